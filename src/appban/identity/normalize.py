"""Name keys for matching app names across scripts, widths, cases, accents and disguises.

Two keys per name:
- `name_key`: what a careful human would call "the same name" (NFKC, case-folded, accents removed,
  spaces and punctuation dropped). CJK names survive intact.
- `disguise_key`: additionally undoes the tricks of a look-alike: Cyrillic and Greek letters that look
  Latin, digits standing in for letters, and (on request) marketing suffixes ("Lite", "Pro"...).
A name that only matches on its disguise key is suspicious by construction.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

# Letters of other scripts that render like Latin letters (after case folding). A short table of the
# homoglyphs seen in app-name squatting is enough here; a full Unicode confusables skeleton (UTS #39)
# would also fold legitimate non-Latin names together.
_HOMOGLYPHS = str.maketrans(
    {
        # Cyrillic
        "а": "a",
        "в": "b",
        "е": "e",
        "ё": "e",
        "і": "i",
        "ї": "i",
        "ј": "j",
        "к": "k",
        "м": "m",
        "н": "h",
        "о": "o",
        "р": "p",
        "с": "c",
        "т": "t",
        "у": "y",
        "х": "x",
        "ѕ": "s",
        "ԁ": "d",
        "ԛ": "q",
        "ԝ": "w",
        # Greek
        "α": "a",
        "β": "b",
        "ε": "e",
        "η": "n",
        "ι": "i",
        "κ": "k",
        "ν": "v",
        "ο": "o",
        "ρ": "p",
        "τ": "t",
        "υ": "u",
        "χ": "x",
        # Latin look-alikes
        "ı": "i",
        "ł": "l",
        "ø": "o",
        "ɡ": "g",
    }
)
# Digits and symbols used as letters ("T1kTok", "W3Chat", "$hareit").
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "$": "s", "@": "a", "!": "i"})
# Trailing words that make a variant of the same app name ("TikTok Lite", "WeChat Pro 2").
SUFFIXES = frozenset(
    {"lite", "pro", "plus", "hd", "free", "premium", "mini", "go", "app", "official", "new", "2", "x", "max", "video"}
)


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _squash(words: list[str]) -> str:
    return "".join(ch for ch in "".join(words) if ch.isalnum())


def _words(text: str) -> list[str]:
    return "".join(ch if ch.isalnum() else " " for ch in text).split()


@lru_cache(maxsize=262_144)
def name_key(text: str) -> str:
    return _squash(_words(_fold(text)))


@lru_cache(maxsize=262_144)
def disguise_key(text: str, strip_suffixes: bool = False) -> str:
    # Symbols used as letters must be replaced before punctuation is dropped.
    words = _words(_fold(text).translate(_HOMOGLYPHS).translate(_LEET))
    while strip_suffixes and len(words) > 1 and words[-1] in SUFFIXES:
        words.pop()
    return _squash(words)


# Words of a company's legal form, in the spellings stores show ("Ltd", "Ltd.", "Limited", "Co., Ltd",
# "Pte. Ltd", "Company Limited", "Inc.", "LLC"). A seller's name is compared without them, so "TikTok Ltd."
# and "TikTok Limited" are one account; the words before them must be equal, never a prefix.
LEGAL_FORMS = frozenset(
    {
        "ltd", "limited", "co", "company", "pte", "private", "inc", "incorporated", "llc", "corp", "corporation",
        "plc", "gmbh", "ag", "sa", "bv", "pty", "sdn", "bhd", "kk", "llp", "lp", "sarl", "srl", "spa", "oy", "ab",
    }
)  # fmt: skip


@lru_cache(maxsize=65_536)
def publisher_key(text: str) -> str:
    """A seller or developer account's key: `name_key` without its trailing legal form ("Beijing Microlive
    Vision Technology Co., Ltd" and "... Company Limited" share one). A name made only of such words keeps them."""
    words = _words(_fold(text))
    end = len(words)
    while end > 1 and words[end - 1] in LEGAL_FORMS:
        end -= 1
    return _squash(words[:end])


def uses_disguise(text: str) -> bool:
    """Whether the name mixes in letters from other scripts that look Latin, or digits for letters."""
    folded = _fold(text)
    return folded.translate(_HOMOGLYPHS) != folded


# How stores join an app's name to its subtitle: "TikTok - Videos, Shop & LIVE", "CapCut: Photo & Video
# Editor", "Name | Subtitle". A hyphen or dash counts only between spaces, so "Wi-Fi" or "PayPay-ペイペイ"
# stay whole. NFKC turns the full-width colon and vertical line of CJK titles (U+FF1A, U+FF5C) into these.
TITLE_DASHES = "-\u2013\u2014"
TITLE_MARKS = ":|"


@lru_cache(maxsize=65_536)
def split_title(text: str) -> tuple[str, str] | None:
    """(name, subtitle) of a store title, or None when the text has no subtitle. One pass: linear time."""
    text = unicodedata.normalize("NFKC", text)
    last = len(text) - 1
    for i, ch in enumerate(text):
        if ch in TITLE_MARKS or (ch in TITLE_DASHES and 0 < i < last and text[i - 1] == " " and text[i + 1] == " "):
            head, tail = text[:i].strip(), text[i + 1 :].strip()
            return (head, tail) if head and tail else None
    return None


def title_words(text: str) -> list[str]:
    """The space-separated words of a name ("Douyin 抖音" -> two names of one app)."""
    return unicodedata.normalize("NFKC", text).split()
