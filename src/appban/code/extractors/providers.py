"""Login providers configured with credentials: the user's own choice of WeChat or TikTok login.

A multi-provider login library's own provider table is an offer, not a use (code/catalogs.py). What makes it
a use is the user's code or configuration giving that provider its credentials, in the shapes the libraries
document:

- grant (its README, "Configuration: Basics"): a provider key holding `key` and `secret`,
  `{"wechat": {"key": "...", "secret": "..."}}`;
- better-auth (docs, authentication/tiktok): `socialProviders: {tiktok: {clientKey, clientSecret}}`, and its
  `wechat` provider with `clientId` and `clientSecret`;
- django-allauth (SOCIALACCOUNT_PROVIDERS): `{"weixin": {"APP": {"client_id": ..., "secret": ...}}}`;
- python-social-auth (a backend's settings are SOCIAL_AUTH_<NAME>_KEY / _SECRET): SOCIAL_AUTH_WEIXIN_KEY,
  SOCIAL_AUTH_WEIXINAPP_SECRET;
- Auth.js (the providers' pages): the environment variables AUTH_WECHAT_APP_ID / AUTH_WECHAT_APP_SECRET and
  AUTH_TIKTOK_ID / AUTH_TIKTOK_SECRET, which configure a provider listed without options.

A provider object counts when a `secret` (secret, clientSecret, client_secret, appSecret...) is written
before the object's first closing brace: an icon, a share button or a label table names "wechat" without
one. One RE2 search over the text, run only on texts that hold a provider's name and a credential's word.
"""

from __future__ import annotations

from collections.abc import Iterator

from appban.code.extractors._linear import linear
from appban.code.extractors._text import LineIndex
from appban.code.model import Observation

KIND = "configured_providers"
_NAMES = {"wechat": "wechat", "weixin": "wechat", "weixinapp": "wechat", "tiktok": "tiktok"}
_CONFIGURED = linear(
    r"(?i:\b(wechat|weixin|tiktok)[\"']?\s*[:=]\s*\{[^}]*?secret)"
    r"|\b(?:SOCIAL_AUTH_(WEIXIN(?:APP)?)_(?:KEY|SECRET)|AUTH_(WECHAT)_APP_(?:ID|SECRET)|AUTH_(TIKTOK)_(?:ID|SECRET))\b"
)


# Every configured provider names one of these (case-folded); the scan's prefilter looks for them too.
NAMES = ("wechat", "weixin", "tiktok")


def worth_searching(lowered: str) -> bool:
    """Whether a (case-folded) text can hold a configured provider at all: most texts cannot."""
    return any(name in lowered for name in NAMES) and ("secret" in lowered or "auth_" in lowered)


def configured_providers(text: str) -> Iterator[Observation]:
    lines: LineIndex | None = None
    for found in _CONFIGURED.finditer(text):
        name = next(group for group in found.groups() if group)
        lines = lines or LineIndex(text)
        yield Observation(KIND, _NAMES[name.casefold()], lines.line(found.start()), found.group(0)[:120])
