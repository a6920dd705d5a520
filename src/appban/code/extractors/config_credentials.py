"""Credentials for WeChat, WeCom or TikTok in YAML and .properties configuration: a provider configured.

The same rule as for login libraries (providers.py): naming the app is no use of it; giving it a credential
is. Read here, in the shapes the projects document:

- WxJava's Spring Boot starters (binarywang/WxJava, spring-boot-starters/*/README.md): `wx.mp.app-id` with
  `wx.mp.secret`, `wx.miniapp.secret`, `wx.open.secret`, `wx.channel.secret`, and WeChat Pay's `wx.pay.mch-key`,
  `wx.pay.api-v3-key`, `wx.pay.private-key-path`, also per account under `wx.pay.configs.<key>.`; its WeCom
  starter's `wx.cp.corp-secret` / `wx.cp.secret` is WeCom's (another app);
- Spring Security's OAuth 2.0 client (`spring.security.oauth2.client.registration.<id>.client-secret`) and
  any section named after the app holding a secret (`wechat:` / `weixin:` / `tiktok:` with `app_id` and
  `secret`, under `omniauth:`, `social:`, `auth:` or at the top);
- the wechat gem's `config/wechat.yml` (rubydoc.info/gems/wechat): `appid` and `secret` per environment, in a
  file named after the app.

A key counts when its last segment names a secret (secret, app-secret, client_secret, corpSecret, mch-key,
api-v3-key, private-key-path...) and its value is not empty: a template's `wx.mp.secret=` configures nothing,
`${WX_MP_SECRET}` does (from the environment). Keys are compared without case, '-' or '_' (Spring's relaxed
binding: app-id, appId and app_id are one key).

YAML block mappings are followed by indentation, one line at a time, with a bounded stack of parent keys:
linear in the file, with no YAML parser (no aliases to expand, no tags to construct). Flow mappings and
lists are left to providers.py's search.
"""

from __future__ import annotations

from collections.abc import Iterator

from appban.code import budget
from appban.code.extractors._linear import linear
from appban.code.model import FileNames, Observation

KIND = "configured_providers"
SUFFIXES = (".yml", ".yaml", ".properties")
_MAX_DEPTH = 32
# A YAML block-mapping line: indentation, a plain or quoted key, a colon, and the rest.
_YAML_KEY = linear(
    r"""^( *)(?:- +)?(?:"([^"]{1,200})"|'([^']{1,200})'|([A-Za-z0-9_$][A-Za-z0-9_.$\-\[\]]{0,199})) *:(?: +(.*))?$"""
)
# A .properties line: key, then '=', ':' or whitespace, then the value.
_PROPERTY = linear(r"^\s*([A-Za-z0-9_.\-\[\]]{1,300})\s*[=:\s]\s*(.*)$")
_APPS = {"wechat": "wechat", "weixin": "wechat", "tiktok": "tiktok"}
# A file named after the app: a client's own configuration (the wechat gem's), not a login provider's section.
_FILES = {"wechat": "wechat-config", "weixin": "wechat-config", "tiktok": "tiktok"}
_FILE_ROOT = "\0file:"
# WxJava's prefixes (after normalising): each product's starter, and WeCom's.
_WXJAVA = {"mp": "wechat-config", "miniapp": "wechat-config", "open": "wechat-config", "channel": "wechat-config",
           "pay": "wechat-config", "cp": "wecom-config"}  # fmt: skip
_EMPTY = {"", "''", '""', "~", "null", "none", "[]", "{}"}


# A file not named after an app is read only when its (case-folded) text holds one of these; the scan's
# prefilter looks for them too.
WORDS = ("wechat", "weixin", "tiktok", "wx.", "wx:")


def wants(name: str) -> bool:
    return name.endswith(SUFFIXES)


#: Configuration files named after an app (config/wechat.yml, wechat.production.yml): read whatever their
#: text holds. Declared as names, so that a walk can sort names without asking (code/filenames.py).
NAMED_AFTER_APP = FileNames(prefixed=tuple((stem + ".", SUFFIXES) for stem in sorted(_FILES)))


def named_after_app(name: str) -> bool:
    """A configuration file named after an app (config/wechat.yml) is read whatever its text holds."""
    return NAMED_AFTER_APP.match(name.rsplit("/", 1)[-1])


def _norm(key: str) -> str:
    return key.replace("-", "").replace("_", "").casefold()


def _is_secret(leaf: str) -> bool:
    return leaf.endswith(("secret", "mchkey", "apiv3key", "privatekeypath", "privatekeycontent", "privatekey"))


def _provider(path: list[str]) -> str | None:
    """The provider a dotted key path configures with a credential, if any."""
    if len(path) < 2 or not _is_secret(path[-1]):
        return None
    if path[0] == "wx" and path[1] in _WXJAVA:
        return _WXJAVA[path[1]]
    for segment in path[1:-1]:
        if segment in _APPS:
            return _APPS[segment]
    if path[0].startswith(_FILE_ROOT):
        return _FILES[path[0].removeprefix(_FILE_ROOT)]
    return _APPS.get(path[0])


def _value(text: str | None) -> str:
    value = (text or "").strip()
    if value.startswith("#") or (value.startswith("&") and " " not in value):
        return ""  # a comment, or an anchor naming the mapping that follows ("default: &default")
    if " #" in value:
        value = value.split(" #", 1)[0].strip()
    return value


def config_credentials(text: str, name: str) -> Iterator[Observation]:
    """Credentials in one configuration file's text (decoded and capped by the source reader)."""
    # A file named after the app (the wechat gem's config/wechat.yml) is that app's section.
    stem = name.rsplit("/", 1)[-1].split(".", 1)[0]
    root = [_FILE_ROOT + stem] if stem in _FILES else []
    lowered = text.casefold()
    if not root and not any(word in lowered for word in WORDS):
        return
    found = _properties(text, root) if name.endswith(".properties") else _yaml(text, root)
    seen: set[str] = set()
    for provider, line, key in found:
        if provider not in seen:  # one observation per provider and file: the first credential
            seen.add(provider)
            yield Observation(KIND, provider, line, key[:120])


def _properties(text: str, root: list[str]) -> Iterator[tuple[str, int, str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        budget.tick(number)
        stripped = line.lstrip()
        if not stripped or stripped[0] in "#!" or ("." not in line and not root):
            continue
        if (match := _PROPERTY.match(line)) is None or _value(match[2]) in _EMPTY:
            continue
        path = root + [_norm(part) for part in match[1].split(".")]
        if (provider := _provider(path)) is not None:
            yield provider, number, match[1]


def _yaml(text: str, root: list[str]) -> Iterator[tuple[str, int, str]]:
    stack: list[tuple[int, str]] = []  # (indentation, key) of the open parent mappings
    for number, line in enumerate(text.splitlines(), start=1):
        budget.tick(number)
        if ":" not in line or line.lstrip().startswith("#"):
            continue
        if line.startswith("---"):
            stack = []
            continue
        match = _YAML_KEY.match(line)
        if match is None:
            continue
        indent = len(match[1])
        key = match[2] or match[3] or match[4]
        while stack and stack[-1][0] >= indent:
            stack.pop()
        value = _value(match[5])
        parts = [_norm(part) for part in key.split(".")]  # Spring allows "wx.mp:" and "secret:" below it
        path = root + [part for _, parent in stack for part in parent.split("\0")] + parts
        if value in _EMPTY or value in {"|", ">", "|-", ">-"}:
            if not value and len(stack) < _MAX_DEPTH:
                stack.append((indent, "\0".join(parts)))
            if value in {"|", ">", "|-", ">-"} and (provider := _provider(path)) is not None:
                yield provider, number, ".".join(path)  # a block scalar: the secret follows on the next lines
            continue
        if (provider := _provider(path)) is not None:
            yield provider, number, ".".join(path)
