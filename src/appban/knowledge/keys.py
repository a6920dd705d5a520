"""Ed25519 keys that sign knowledge bundles, and the keys this user trusts.

A public key is written as one line, `ed25519:<base64 of its 32 raw bytes>`: short enough to paste into a
chat or a README, and the same string names the signer in a bundle's manifest. A private key is a PKCS #8
PEM file, written with mode 0600. The trusted keys are `trusted-keys` in appban's per-user configuration
directory (XDG: `$XDG_CONFIG_HOME/appban/`, else `~/.config/appban/`), one key a line, `#` comments allowed.

`cryptography` is imported here only: commands that merely read knowledge never import this module.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PREFIX = "ed25519:"
PRIVATE_NAME = "appban-bundle-key.pem"
PUBLIC_NAME = "appban-bundle-key.pub"
TRUSTED_NAME = "trusted-keys"
MAX_KEY_FILE = 64 << 10  # a PEM key is a few hundred bytes; a trusted-keys file a few dozen lines
_PUBLIC = re.compile(r"ed25519:[A-Za-z0-9+/]{43}=")


class KeyProblem(ValueError):
    """A key that cannot be read or used; the message names the file or the key."""


def config_dir() -> Path:
    """appban's per-user configuration directory (XDG Base Directory: `$XDG_CONFIG_HOME` if absolute)."""
    base = os.environ.get("XDG_CONFIG_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "appban"


def trusted_path() -> Path:
    return config_dir() / TRUSTED_NAME


def public_text(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return PREFIX + base64.b64encode(raw).decode()


def parse_public(text: str) -> Ed25519PublicKey:
    """A public key from its one-line form; KeyProblem says what is wrong with it."""
    text = text.strip()
    if not _PUBLIC.fullmatch(text):
        raise KeyProblem(f"{text[:80]!r} is not a public key: write it as appban keys generate prints it (ed25519:...)")
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text.removeprefix(PREFIX), validate=True))
    except (ValueError, binascii.Error) as exc:
        raise KeyProblem(f"{text}: not an Ed25519 public key ({exc})") from exc


@dataclass(frozen=True)
class GeneratedKey:
    private: Path
    public: Path
    text: str  # the public key's one-line form


def generate(directory: Path) -> GeneratedKey:
    """A new key pair in `directory`: the private key (mode 0600, never replaced) and its public line."""
    directory.mkdir(parents=True, exist_ok=True)
    private_path, public_path = directory / PRIVATE_NAME, directory / PUBLIC_NAME
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    try:
        # O_EXCL: an existing key is someone's signing identity; never overwrite it.
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise KeyProblem(f"{private_path}: already exists; choose another directory with -o") from None
    with os.fdopen(fd, "wb") as stream:
        os.fchmod(fd, 0o600)  # whatever the umask
        stream.write(pem)
    text = public_text(key.public_key())
    public_path.write_text(text + "\n", encoding="ascii")
    return GeneratedKey(private_path, public_path, text)


def load_private(path: Path) -> Ed25519PrivateKey:
    """The signing key in a PEM file written by `generate` (or `openssl genpkey -algorithm ed25519`)."""
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_KEY_FILE + 1)
    except OSError as exc:
        raise KeyProblem(f"{path}: cannot read the private key: {exc.strerror or exc}") from exc
    if len(data) > MAX_KEY_FILE:
        raise KeyProblem(f"{path}: not a private key (larger than {MAX_KEY_FILE} bytes)")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyProblem(f"{path}: not an unencrypted PEM private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyProblem(f"{path}: not an Ed25519 key; make one with appban keys generate")
    return key


def sign(key: Ed25519PrivateKey, data: bytes) -> bytes:
    return key.sign(data)  # Ed25519 signatures are deterministic: the same bytes give the same signature


def verifies(public: str, signature: bytes, data: bytes) -> bool:
    try:
        parse_public(public).verify(signature, data)
    except (InvalidSignature, KeyProblem):
        return False
    return True


def trusted_keys() -> list[str]:
    """The public keys this user trusts, in the order they were added."""
    path = trusted_path()
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_KEY_FILE + 1)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise KeyProblem(f"{path}: cannot read the trusted keys: {exc.strerror or exc}") from exc
    if len(data) > MAX_KEY_FILE:
        raise KeyProblem(f"{path}: larger than {MAX_KEY_FILE} bytes; not a trusted-keys file")
    keys: list[str] = []
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if not _PUBLIC.fullmatch(text):
            raise KeyProblem(f"{path}:{number}: not a public key (ed25519:<base64>)")
        keys.append(text)
    return keys


def trust(text: str) -> bool:
    """Add a public key to the trusted keys; False when it was trusted already."""
    parse_public(text)
    text = text.strip()
    if text in trusted_keys():
        return False
    path = trusted_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="ascii") as stream:
        stream.write(text + "\n")
    return True
