"""Payment values from text or numbers, column at a time: amounts, currencies, countries, party types.

Each converter returns the converted column and a mask of the rows whose value is present but wrong (or
missing where it is required), so the reader can report those rows with their line and drop them.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pycountry

from appban.payments.records import AMOUNT
from appban.reading.stats import Mask
from appban.reading.values import flags, only, to_text

_DECIMAL = r"^[+-]?\d{1,18}(?:\.\d{1,5})?$"  # at most 18 digits before the point and 5 after, as ISO 20022
_LARGEST = 1e18
DECIMAL_MARKS = ("point", "comma")

# Amounts written with digit grouping; groups are exactly three digits. A space-like or apostrophe separator
# ("1 250,00", "1'250.00", as French and Swiss exports write them) cannot be a decimal mark, so the one mark
# after it is the decimal mark. A comma or point used for grouping is told from the decimal mark by the other
# one following it ("1,250.00", "1.250,00") or by appearing twice ("1,234,567").
_SPACES = "[ '\u2019\u00a0\u202f\u2009]"  # space, apostrophes, no-break, narrow no-break and thin spaces
_SIGN = r"^[+-]?"
_SPACED = rf"{_SIGN}\d{{1,3}}(?:{_SPACES}\d{{3}})+(?:[.,]\d{{1,5}})?$"
_SPACED_POINT = rf"{_SIGN}\d{{1,3}}(?:{_SPACES}\d{{3}})+(?:\.\d{{1,5}})?$"
_SPACED_COMMA = rf"{_SIGN}\d{{1,3}}(?:{_SPACES}\d{{3}})+(?:,\d{{1,5}})?$"
_COMMA_GROUPS = rf"{_SIGN}\d{{1,3}}(?:,\d{{3}})+(?:\.\d{{1,5}})?$"  # 1,250  1,250.00  1,234,567
_POINT_GROUPS = rf"{_SIGN}\d{{1,3}}(?:\.\d{{3}})+(?:,\d{{1,5}})?$"  # 1.250  1.250,00  1.234.567
_COMMA_DECIMAL = rf"{_SIGN}\d{{1,18}},\d{{1,5}}$"  # 12,50
_INTEGER = rf"{_SIGN}\d{{1,18}}$"
# Per decimal mark (None: not given), the patterns read and how: commas dropped (they group), points dropped
# and the comma made the point (points group), or the spaces dropped and a comma made the point.
_READ: dict[str | None, dict[str, str]] = {
    None: {
        "commas": rf"{_SIGN}\d{{1,3}}(?:,\d{{3}})+\.\d{{1,5}}$|{_SIGN}\d{{1,3}}(?:,\d{{3}}){{2,}}$",
        "points": rf"{_SIGN}\d{{1,3}}(?:\.\d{{3}})+,\d{{1,5}}$|{_SIGN}\d{{1,3}}(?:\.\d{{3}}){{2,}}$",
        "spaces": _SPACED,
    },
    "point": {"commas": _COMMA_GROUPS, "spaces": _SPACED_POINT},
    "comma": {"points": f"{_POINT_GROUPS}|{_COMMA_DECIMAL}|{_INTEGER}", "spaces": _SPACED_COMMA},
}

# Values of payer_type/payee_type columns (lower-cased, letters only) and what they say.
_PARTY_TYPES = {
    "individual": "individual",
    "person": "individual",
    "personal": "individual",
    "private": "individual",
    "consumer": "individual",
    "natural": "individual",
    "naturalperson": "individual",
    "user": "individual",
    "organisation": "organisation",
    "organization": "organisation",
    "business": "organisation",
    "company": "organisation",
    "corporate": "organisation",
    "merchant": "organisation",
    "legalentity": "organisation",
    "org": "organisation",
}
_KINDS = {
    "payment": "payment",
    "charge": "payment",
    "purchase": "payment",
    "sale": "payment",
    "capture": "payment",
    "transfer": "transfer",
    "credittransfer": "transfer",
    "p2p": "transfer",
    "remittance": "transfer",
    "payout": "transfer",
}


def to_amount(values: Any, decimal: str | None = None) -> tuple[Any, Mask]:
    """Amounts as decimal(23, 5), and where one is missing or not a number of that shape ("1e400").

    Text may group digits ("1,250.00", "1.250,00", "1 250,00", "1'250.00"), carry a currency symbol
    ("$1,250.00", "-€5,00", "12,00 €") and write a negative in parentheses ("(12.00)"). `decimal` is the file's decimal
    mark ("point" or "comma"); without it only unambiguous amounts are read: a plain "1.25" takes the point
    as the decimal mark, as machine exports write it, while "1,250" or "12,50" could mean two things and
    is reported (name the mark with --decimal).
    """
    if values is None:
        return None, np.zeros(0, dtype=np.bool_)
    kind = values.type
    if pa.types.is_integer(kind):
        fits = pc.less(pc.abs(values), int(_LARGEST))
        # Through a decimal wide enough for any int64: a direct cast refuses int64 for want of precision.
        amounts = only(values, fits).cast(pa.decimal128(38, 5)).cast(AMOUNT, safe=False)
    elif pa.types.is_floating(kind):
        # A float with more than 5 decimals, or beyond 18 digits, is not an amount this schema holds.
        rounded = pc.round(values, 5)
        fits = pc.and_(pc.less(pc.abs(values), _LARGEST), pc.equal(rounded, values))
        amounts = only(rounded, fits).cast(AMOUNT, safe=False)  # exact: checked to fit above
    else:
        amounts = _text_amounts(to_text(values), decimal)
    return amounts, flags(pc.is_null(amounts))


# How spreadsheets and accounting exports write a sign or a currency around the number: a currency symbol
# before or after it ("$1,250.00", "-€5,00", "12,00 €"), a negative in parentheses ("(12.00)", "($12.00)"),
# the Unicode minus sign. Only symbols (Unicode category Sc) are dropped: an ISO code written in the amount
# ("USD 12.00") is not, so such a cell is reported rather than read against another currency column.
_DRESSED = r"[()\p{Sc}\x{2212}]"
_PARENS = r"^\(\s*\p{Sc}?\s*([^()+\-\x{2212}]*?)\s*\p{Sc}?\s*\)$"  # (12.00) ($12.00) (12,00 €): a negative
_SYMBOL_FIRST = r"^([+\-\x{2212}]?)\s*\p{Sc}\s*"  # "$12", "-$12", "€ 12"
_SYMBOL_AFTER = r"\s*\p{Sc}$"  # "12,00 €"


def _undressed(text: Any) -> Any:
    """Amounts without their currency symbol, parenthesised negatives written with a minus sign; other
    text as it was (it is read or reported as before)."""
    if not pc.any(pc.fill_null(pc.match_substring_regex(text, _DRESSED), False)).as_py():
        return text
    text = pc.replace_substring_regex(text, _PARENS, r"-\1")
    text = pc.replace_substring_regex(text, _SYMBOL_FIRST, r"\1")
    text = pc.replace_substring_regex(text, _SYMBOL_AFTER, "")
    return pc.replace_substring(text, "\u2212", "-")


def _text_amounts(text: Any, decimal: str | None) -> Any:
    if decimal != "comma":  # plain decimals mean the same with a point or no mark named
        try:
            return text.cast(AMOUNT)  # the usual column: plain decimals throughout
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    text = _undressed(text)
    read = _READ[decimal]
    plain = pc.match_substring_regex(text, _DECIMAL) if decimal != "comma" else pc.is_valid(pa.nulls(len(text)))
    rewritten = pa.nulls(len(text), pa.string())
    for how, pattern in read.items():
        chosen = pc.and_kleene(pc.invert(plain), pc.match_substring_regex(text, pattern))
        if not pc.any(pc.fill_null(chosen, False)).as_py():
            continue
        if how == "commas":
            plain_text = pc.replace_substring(text, ",", "")
        elif how == "points":
            plain_text = pc.replace_substring(pc.replace_substring(text, ".", ""), ",", ".")
        else:
            plain_text = pc.replace_substring(pc.replace_substring_regex(text, _SPACES, ""), ",", ".")
        rewritten = pc.if_else(chosen, plain_text, rewritten)
    amounts = pc.coalesce(only(text, plain), rewritten)
    return only(amounts, pc.match_substring_regex(amounts, _DECIMAL)).cast(AMOUNT)


@cache
def _currencies() -> Any:
    return pa.array(sorted(currency.alpha_3 for currency in pycountry.currencies))


@cache
def _countries() -> tuple[Any, Any]:
    """Alpha-2 and alpha-3 codes, and the alpha-2 code each stands for."""
    codes = [(c.alpha_2, c.alpha_2) for c in pycountry.countries] + [
        (c.alpha_3, c.alpha_2) for c in pycountry.countries
    ]
    codes += [("XK", "XK"), ("XKX", "XK")]  # Kosovo: a user-assigned code that payment systems use
    return pa.array([code for code, _ in codes]), pa.array([alpha_2 for _, alpha_2 in codes])


def to_currency(values: Any, length: int) -> tuple[Any, Mask]:
    """ISO 4217 alphabetic codes, upper case; the mask marks missing and unknown ones."""
    if values is None:
        return pa.nulls(length, pa.string()), np.ones(length, dtype=np.bool_)
    codes = pc.utf8_upper(to_text(values))
    known = pc.is_in(codes, value_set=_currencies())
    return only(codes, known), ~flags(known)


def to_country(values: Any) -> tuple[Any, Mask]:
    """ISO 3166-1 alpha-2 codes (alpha-3 ones are translated); the mask marks present but unknown ones."""
    if values is None:
        return None, np.zeros(0, dtype=np.bool_)
    codes = pc.utf8_upper(to_text(values))
    names, alpha_2 = _countries()
    found = pc.index_in(codes, value_set=names)
    countries = alpha_2.take(found)
    return countries, flags(pc.and_(pc.is_valid(codes), pc.is_null(found)))


def to_party_type(values: Any) -> Any:
    """ "individual", "organisation" or null (not said, or said in words not listed)."""
    return _lookup(values, _PARTY_TYPES)


def to_kind(values: Any) -> Any:
    """ "payment", "transfer" or null."""
    return _lookup(values, _KINDS)


def _lookup(values: Any, table: dict[str, str]) -> Any:
    if values is None:
        return None
    words = pc.replace_substring_regex(pc.utf8_lower(to_text(values)), r"[^a-z0-9]", "")
    keys = pa.array(list(table))
    return pa.array(list(table.values())).take(pc.index_in(words, value_set=keys))
