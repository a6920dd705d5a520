"""ISO 20022 customer credit transfers: pacs.008 (bank to bank) and pain.001 (customer to bank) messages.

A message is one XML `Document` whose namespace names it and its version, e.g.
`urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08`. It may stand alone or sit in an envelope beside a
Business Application Header (`AppHdr`, namespace `...:head.001.001.*`); a file may hold several.

    pacs.008  Document/FIToFICstmrCdtTrf: GrpHdr, then CdtTrfTxInf+ (each with its own Dbtr, DbtrAgt, ...)
    pain.001  Document/CstmrCdtTrfInitn:  GrpHdr, then PmtInf+; a PmtInf names the debtor, its agent and the
              requested execution date, then holds its CdtTrfTxInf+ (creditor side only)

Swiss banks took pain.001 before 2019 in SIX Interbank Clearing's own namespace for the Swiss Payment
Standards (`http://www.six-interbank-clearing.com/de/pain.001.001.03.ch.02.xsd`, and `.ch.01` before it): a
restriction of pain.001.001.03 with the same element names, read as pain.001. Its pain.002 and pain.008
siblings are no credit transfers.

Every version is read (pacs.008.001.02 to .13, pain.001.001.03 to .12): the elements used here kept their
names, except that older versions write an agent's BIC as `BIC` where newer ones write `BICFI`, and that
pain.001 before v08 writes `ReqdExctnDt` as a bare date where later versions choose `Dt` or `DtTm` in it.

One record per CdtTrfTxInf. `ts`: for pacs.008 the transaction's AccptncDtTm, else its IntrBkSttlmDt,
else the group header's IntrBkSttlmDt, else its CreDtTm; for pain.001 the PmtInf's ReqdExctnDt, else the
group header's CreDtTm. Date-times without an offset are in the reader's zone, bare dates are midnight
there. `amount`/`currency` = IntrBkSttlmAmt (pacs.008) or Amt/InstdAmt, else Amt/EqvtAmt/Amt (pain.001),
and its Ccy. `id` = EndToEndId, else TxId, else UETR ("NOTPROVIDED" does not count). `payer*` come from
Dbtr and DbtrAgt, `payee*` from Cdtr and CdtrAgt: the name, PstlAdr/Ctry else CtryOfRes, "individual"
for a PrvtId and "organisation" for an OrgId, the agent's BIC else its name. `processor` is the first
intermediary agent (IntrmyAgt1..3), its country that of the BIC (characters 5-6) else its address.
`purpose` = Purp/Cd, else Purp/Prtry, else a category purpose (PmtTpInf/CtgyPurp/Cd of the transaction,
then of the PmtInf or group header); `remittance` = every RmtInf/Ustrd, joined with a space. `method` is
the scheme the message states (PmtTpInf/SvcLvl/Cd of the transaction, then of the PmtInf or group header):
"sepa_credit_transfer" under SEPA, "credit_transfer" under any other; it overrules wallet names in the
remittance text, not the parties (markers.yaml `other_methods`).

The file is parsed as a stream (lxml iterparse, events only for the few elements that matter): each
transaction is read when its end tag arrives, then dropped with whatever preceded it, so memory stays
flat however large the file. A transaction that cannot be read (no amount, an amount that is not an
ISO 20022 amount, an unknown currency or country, an impossible date) is reported at the line of its
start tag and dropped; the rest go on. XML that is not well-formed ends the file where the parser stops,
keeping what came before: libxml2's recover mode is not used, because it guesses a repair (closing
elements early, dropping text) and would turn damage into plausible but wrong records. A Document of
another kind (pacs.009, camt.053, no namespace) is reported once, at its line, and ends the file too.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pycountry
from lxml import etree  # type: ignore[import-untyped]

from appban.payments.records import AMOUNT, RECORD_SCHEMA
from appban.reading.stats import DEFAULT_BATCH_ROWS, ReadStats
from appban.reading.streams import open_stream
from appban.rulebook.schema import zone_from_name

Element = Any  # lxml.etree._Element (lxml ships no type information)

_XSD = "urn:iso:std:iso:20022:tech:xsd:"
# The Swiss Payment Standards' pain.001 before 2019 (schema pain.001.001.03.ch.02.xsd, targetNamespace as in
# https://github.com/hardwaremaker/ejb/blob/1d43aad19e091855bc57affa92243aab6cccac4b/src/com/lp/server/eingangsrechnung/bl/SepaXmlMarshallerPain001V03CH.java).
_SIX = "http://www.six-interbank-clearing.com/de/"
_MESSAGE = re.compile(
    re.escape(_XSD)
    + r"(pacs\.008|pain\.001)\.\d{3}\.\d{2}|"
    + re.escape(_SIX)
    + r"(pain\.001)\.\d{3}\.\d{2}\.ch\.\d{2}\.xsd"
)
EXPECTED = f"{_XSD}pacs.008.001.* or {_XSD}pain.001.001.* (or SIX's {_SIX}pain.001.001.03.ch.02.xsd)"

# Detection: a Document element, and a namespace declaration of a credit transfer (in the Document, or in
# an envelope that declares its prefixes up front), or a Business Application Header announcing one.
_SNIFF_DOCUMENT = re.compile(rb"<(?:[\w.-]+:)?Document[\s>/]")
_SNIFF_MESSAGE = re.compile(
    rb"xmlns(?::[\w.-]+)?\s*=\s*[\"'](?:"
    + re.escape(_XSD.encode())
    + rb"(?:pacs\.008|pain\.001)\.|"
    + re.escape(_SIX.encode())
    + rb"pain\.001\.)"
)
_SNIFF_HEADER = re.compile(rb"xmlns(?::[\w.-]+)?\s*=\s*[\"']" + re.escape(_XSD.encode()) + rb"head\.001\.")
_SNIFF_DEFINITION = re.compile(rb"<(?:[\w.-]+:)?MsgDefIdr>\s*(?:pacs\.008|pain\.001)\.")

# The only elements iterparse reports: everything else is built by libxml2 without a Python round trip.
_EVENT_TAGS = ["{*}Document", "{*}GrpHdr", "{*}PmtInf", "{*}CdtTrfTxInf"]

# ISO 20022 amounts (ActiveCurrencyAndAmount): a non-negative decimal, at most 18 digits, 5 after the point.
_PLAIN_AMOUNT = re.compile(r"\d{1,13}(?:\.\d{1,5})?")  # the usual case, valid without counting digits
_DECIMAL = re.compile(r"\+?(\d*)(?:\.(\d*))?")
_DATE_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)?")
_DATE = re.compile(r"(\d{4}-\d\d-\d\d)(Z|[+-]\d\d:\d\d)?")  # xs:date may carry an offset
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)
_CACHED_TIMES = 4096  # settlement and execution dates repeat across a file; acceptance times rarely do

_COUNTRIES = frozenset(country.alpha_2 for country in pycountry.countries)
_CURRENCIES = frozenset(currency.alpha_3 for currency in pycountry.currencies)
_NOT_PROVIDED = "NOTPROVIDED"  # the placeholder ISO 20022 prescribes for an end-to-end id the payer gave none of


class _Invalid(Exception):
    """A transaction that cannot become a record; the message says which element is wrong and why."""


# --- what a block of the message says, as written ----------------------------------------------------------


@dataclass(slots=True)
class _Party:
    tag: str  # "Dbtr" or "Cdtr"
    name: str | None = None
    country: str | None = None  # PstlAdr/Ctry
    residence: str | None = None  # CtryOfRes
    kind: str | None = None  # "individual" or "organisation"


@dataclass(slots=True)
class _Agent:
    tag: str  # "DbtrAgt", "IntrmyAgt1", ...
    bic: str | None = None
    bic_tag: str = "BICFI"
    name: str | None = None
    country: str | None = None  # FinInstnId/PstlAdr/Ctry

    def label(self) -> str | None:
        return self.bic or self.name


@dataclass(slots=True)
class _Block:
    """The fields of one GrpHdr, PmtInf or CdtTrfTxInf that records use, as text; validated when used."""

    end_to_end_id: str | None = None
    tx_id: str | None = None
    uetr: str | None = None
    amount: str | None = None
    currency: str | None = None
    amount_tag: str = ""
    accepted: str | None = None  # AccptncDtTm
    settled: str | None = None  # IntrBkSttlmDt
    created: str | None = None  # GrpHdr/CreDtTm
    requested: str | None = None  # PmtInf/ReqdExctnDt: a date, or the date-time in ReqdExctnDt/DtTm
    requested_tag: str = "ReqdExctnDt"
    debtor: _Party | None = None
    debtor_agent: _Agent | None = None
    creditor: _Party | None = None
    creditor_agent: _Agent | None = None
    intermediaries: list[_Agent] = field(default_factory=list)
    purpose: str | None = None
    category: str | None = None  # PmtTpInf/CtgyPurp/Cd
    service_level: str | None = None  # PmtTpInf/SvcLvl/Cd: the scheme the transfer is made under (SEPA, URGP)
    remittance: list[str] = field(default_factory=list)


Tags = dict[str, str]  # "{namespace}Name" -> "Name", for the names read here


def _text(element: Element) -> str | None:
    text = element.text
    if text is None:
        return None
    return text.strip() or None


def _child_text(element: Element, tags: Tags, wanted: str) -> str | None:
    for child in element:
        if tags.get(child.tag) == wanted:
            return _text(child)
    return None


def _party(element: Element, tags: Tags, tag: str) -> _Party:
    party = _Party(tag)
    for child in element:
        name = tags.get(child.tag)
        if name == "Nm":
            party.name = _text(child)
        elif name == "PstlAdr":
            party.country = _child_text(child, tags, "Ctry")
        elif name == "CtryOfRes":
            party.residence = _text(child)
        elif name == "Id":
            for choice in child:
                kind = tags.get(choice.tag)
                if kind == "PrvtId":
                    party.kind = "individual"
                elif kind == "OrgId":
                    party.kind = "organisation"
    return party


def _agent(element: Element, tags: Tags, tag: str) -> _Agent:
    agent = _Agent(tag)
    for institution in element:
        if tags.get(institution.tag) != "FinInstnId":
            continue
        for child in institution:
            name = tags.get(child.tag)
            if name == "BICFI" or name == "BIC":
                agent.bic, agent.bic_tag = _text(child), name
            elif name == "Nm":
                agent.name = _text(child)
            elif name == "PstlAdr":
                agent.country = _child_text(child, tags, "Ctry")
    return agent


def _on_payment_id(block: _Block, element: Element, tags: Tags, name: str) -> None:
    for child in element:
        kind = tags.get(child.tag)
        if kind == "EndToEndId":
            block.end_to_end_id = _text(child)
        elif kind == "TxId":
            block.tx_id = _text(child)
        elif kind == "UETR":
            block.uetr = _text(child)


def _set_amount(block: _Block, element: Element, tag: str) -> None:
    block.amount, block.currency, block.amount_tag = _text(element), element.get("Ccy"), tag


def _on_settlement_amount(block: _Block, element: Element, tags: Tags, name: str) -> None:
    _set_amount(block, element, name)


def _on_instructed_amount(block: _Block, element: Element, tags: Tags, name: str) -> None:
    # pain.001 Amt is a choice: InstdAmt, or EqvtAmt (an amount in another currency, converted by the bank).
    for child in element:
        kind = tags.get(child.tag)
        if kind == "InstdAmt":
            _set_amount(block, child, "Amt/InstdAmt")
        elif kind == "EqvtAmt":
            for part in child:
                if tags.get(part.tag) == "Amt":
                    _set_amount(block, part, "Amt/EqvtAmt/Amt")


def _on_accepted(block: _Block, element: Element, tags: Tags, name: str) -> None:
    block.accepted = _text(element)


def _on_settled(block: _Block, element: Element, tags: Tags, name: str) -> None:
    block.settled = _text(element)


def _on_created(block: _Block, element: Element, tags: Tags, name: str) -> None:
    block.created = _text(element)


def _on_requested(block: _Block, element: Element, tags: Tags, name: str) -> None:
    # Before pain.001.001.08 a bare ISODate; from v08 a choice of Dt (ISODate) or DtTm (ISODateTime).
    choices = {tags.get(child.tag): child for child in element}
    if "DtTm" in choices:
        block.requested, block.requested_tag = _text(choices["DtTm"]), "ReqdExctnDt/DtTm"
    elif "Dt" in choices:
        block.requested, block.requested_tag = _text(choices["Dt"]), "ReqdExctnDt/Dt"
    else:
        block.requested, block.requested_tag = _text(element), "ReqdExctnDt"


def _on_party(block: _Block, element: Element, tags: Tags, name: str) -> None:
    if name == "Dbtr":
        block.debtor = _party(element, tags, name)
    else:
        block.creditor = _party(element, tags, name)


def _on_agent(block: _Block, element: Element, tags: Tags, name: str) -> None:
    if name == "DbtrAgt":
        block.debtor_agent = _agent(element, tags, name)
    elif name == "CdtrAgt":
        block.creditor_agent = _agent(element, tags, name)
    else:
        block.intermediaries.append(_agent(element, tags, name))


def _on_purpose(block: _Block, element: Element, tags: Tags, name: str) -> None:
    code = proprietary = None
    for child in element:
        kind = tags.get(child.tag)
        if kind == "Cd":
            code = _text(child)
        elif kind == "Prtry":
            proprietary = _text(child)
    block.purpose = code or proprietary


def _on_payment_type(block: _Block, element: Element, tags: Tags, name: str) -> None:
    for child in element:
        kind = tags.get(child.tag)
        if kind == "CtgyPurp":
            block.category = _child_text(child, tags, "Cd")
        elif kind == "SvcLvl" and block.service_level is None:  # the first of a repeated SvcLvl
            block.service_level = _child_text(child, tags, "Cd")


def _on_remittance(block: _Block, element: Element, tags: Tags, name: str) -> None:
    for child in element:
        if tags.get(child.tag) == "Ustrd":
            text = _text(child)
            if text:
                block.remittance.append(text)


_Handler = Callable[[_Block, Element, Tags, str], None]
# The children of GrpHdr, PmtInf and CdtTrfTxInf that records use; every other child is skipped unread.
_HANDLERS: dict[str, _Handler] = {
    "PmtId": _on_payment_id,
    "IntrBkSttlmAmt": _on_settlement_amount,
    "Amt": _on_instructed_amount,
    "AccptncDtTm": _on_accepted,
    "IntrBkSttlmDt": _on_settled,
    "CreDtTm": _on_created,
    "ReqdExctnDt": _on_requested,
    "Dbtr": _on_party,
    "Cdtr": _on_party,
    "DbtrAgt": _on_agent,
    "CdtrAgt": _on_agent,
    "IntrmyAgt1": _on_agent,
    "IntrmyAgt2": _on_agent,
    "IntrmyAgt3": _on_agent,
    "Purp": _on_purpose,
    "PmtTpInf": _on_payment_type,
    "RmtInf": _on_remittance,
}
_INNER_NAMES = ("EndToEndId", "TxId", "UETR", "InstdAmt", "EqvtAmt", "Amt", "Dt", "DtTm", "FinInstnId", "BICFI",
                "BIC", "Nm", "PstlAdr", "Ctry", "CtryOfRes", "Id", "PrvtId", "OrgId", "Cd", "Prtry", "CtgyPurp",
                "SvcLvl", "Ustrd")  # fmt: skip


@lru_cache(maxsize=64)
def _names(namespace: str) -> tuple[dict[str, tuple[str, _Handler]], Tags]:
    """The block-level handlers and the inner element names of one message namespace, by qualified tag."""
    handlers = {f"{{{namespace}}}{name}": (name, handler) for name, handler in _HANDLERS.items()}
    tags = {f"{{{namespace}}}{name}": name for name in (*_HANDLERS, *_INNER_NAMES)}
    return handlers, tags


def _block(element: Element, namespace: str) -> _Block:
    """One walk over the element's children (and, for the fields used, their descendants)."""
    handlers, tags = _names(namespace)
    block = _Block()
    for child in element:
        found = handlers.get(child.tag)
        if found is not None:
            found[1](block, child, tags, found[0])
    return block


# --- validation -----------------------------------------------------------------------------------------------


def _amount(text: str | None, tag: str) -> str:
    """The amount as a decimal string Arrow casts exactly."""
    if text is None:
        raise _Invalid(f"{tag} is empty")
    if _PLAIN_AMOUNT.fullmatch(text):
        return text
    parts = _DECIMAL.fullmatch(text.removeprefix("-"))
    if parts is None or not (parts[1] or parts[2]):
        raise _Invalid(f"{tag} {text!r} is not a decimal amount")
    if text.startswith("-"):
        raise _Invalid(f"{tag} {text!r} is negative")
    whole, fraction = parts[1].lstrip("0"), (parts[2] or "").rstrip("0")
    if len(fraction) > 5:
        raise _Invalid(f"{tag} {text!r} has more than 5 decimals")
    if len(whole) + len(fraction) > 18:
        raise _Invalid(f"{tag} {text!r} has more than 18 digits")
    return f"{whole or '0'}.{fraction or '0'}"


def _currency(code: str | None, tag: str) -> str:
    if code is None or not code.strip():
        raise _Invalid(f"{tag} has no Ccy (currency)")
    upper = code.strip().upper()
    if upper not in _CURRENCIES:
        raise _Invalid(f"{tag} currency {code!r} is not an ISO 4217 code")
    return upper


def _country(code: str | None, tag: str) -> str | None:
    if code is None:
        return None
    upper = code.upper()
    if upper not in _COUNTRIES:
        raise _Invalid(f"{tag} {code!r} is not an ISO 3166-1 alpha-2 country code")
    return upper


class _Clock:
    """ISO 20022 dates and date-times as UTC microseconds; zoneless ones are read in `zone`."""

    def __init__(self, zone: dt.tzinfo) -> None:
        self.zone = zone
        self._seen: dict[tuple[str, bool], int] = {}

    def micros(self, text: str, tag: str, *, date_only: bool) -> int:
        key = (text, date_only)
        known = self._seen.get(key)
        if known is not None:
            return known
        value = self._date(text, tag) if date_only else self._date_time(text, tag)
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.zone)
        micros = (value - _EPOCH) // _MICROSECOND
        if len(self._seen) >= _CACHED_TIMES:
            self._seen.clear()  # bounded: a long file with ever new times must not grow it
        self._seen[key] = micros
        return micros

    @staticmethod
    def _date_time(text: str, tag: str) -> dt.datetime:
        if not _DATE_TIME.fullmatch(text):
            raise _Invalid(f"{tag} {text!r} is not an ISO date-time (YYYY-MM-DDThh:mm:ss[.s][Z|+hh:mm])")
        try:
            return dt.datetime.fromisoformat(text)
        except ValueError as exc:
            raise _Invalid(f"{tag} {text!r} is not a valid date-time: {exc}") from None

    @staticmethod
    def _date(text: str, tag: str) -> dt.datetime:
        parts = _DATE.fullmatch(text)
        if parts is None:
            raise _Invalid(f"{tag} {text!r} is not an ISO date (YYYY-MM-DD)")
        offset = parts[2] or ""
        try:
            day = dt.date.fromisoformat(parts[1])
            zone = dt.datetime.fromisoformat(f"2000-01-01T00:00:00{offset.replace('Z', '+00:00')}").tzinfo
        except ValueError as exc:
            raise _Invalid(f"{tag} {text!r} is not a valid date: {exc}") from None
        return dt.datetime(day.year, day.month, day.day, tzinfo=zone)


# --- records ----------------------------------------------------------------------------------------------------

# The fields a transaction gives, in the order of the row tuples; the others are constant for transfers.
_ROW = ("ts", "id", "amount", "currency", "processor", "processor_country", "payer", "payer_country",
        "payer_type", "payer_agent", "payee", "payee_country", "payee_type", "payee_agent", "purpose",
        "remittance", "method", "source", "line")  # fmt: skip
_CONSTANT = {"kind": "transfer"}
_PIECE_ROWS = 8192  # rows held as Python tuples before they become Arrow arrays
Row = tuple[Any, ...]


def _party_fields(party: _Party | None, agent: _Agent | None) -> tuple[str | None, ...]:
    if party is None:
        name = country = kind = None
    else:
        name, kind = party.name, party.kind
        if party.country is not None:
            country = _country(party.country, f"{party.tag}/PstlAdr/Ctry")
        else:
            country = _country(party.residence, f"{party.tag}/CtryOfRes")
    return name, country, kind, agent.label() if agent is not None else None


def _processor(intermediaries: list[_Agent]) -> tuple[str | None, str | None]:
    for agent in sorted(intermediaries, key=lambda agent: agent.tag):  # IntrmyAgt1 before 2 before 3
        if agent.bic is not None:
            where = f"{agent.tag}/FinInstnId/{agent.bic_tag}"
            return agent.bic, _country(agent.bic[4:6], f"{where} {agent.bic!r}: country code")
        if agent.name is not None:
            return agent.name, _country(agent.country, f"{agent.tag}/FinInstnId/PstlAdr/Ctry")
    return None, None


def _identifier(block: _Block) -> str | None:
    for value in (block.end_to_end_id, block.tx_id, block.uetr):
        if value is not None and value != _NOT_PROVIDED:
            return value
    return None


def _record(message: str, tx: _Block, payment: _Block | None, group: _Block | None, clock: _Clock, line: int) -> Row:
    """The row of one transaction; _Invalid when it cannot be one."""
    context = [block for block in (payment, group) if block is not None]  # inner first
    if tx.amount_tag == "":
        wanted = "IntrBkSttlmAmt" if message == "pacs.008" else "Amt/InstdAmt or Amt/EqvtAmt/Amt"
        raise _Invalid(f"CdtTrfTxInf has no {wanted}")
    amount = _amount(tx.amount, tx.amount_tag)
    currency = _currency(tx.currency, tx.amount_tag)
    ts = _timestamp(message, tx, payment, group, clock)
    debtor = tx.debtor or (payment.debtor if payment else None)
    debtor_agent = tx.debtor_agent or (payment.debtor_agent if payment else None)
    payer = _party_fields(debtor, debtor_agent)
    payee = _party_fields(tx.creditor, tx.creditor_agent)
    processor, processor_country = _processor(tx.intermediaries)
    purpose = tx.purpose or tx.category or next((block.category for block in context if block.category), None)
    remittance = " ".join(tx.remittance) or None
    level = tx.service_level or next((block.service_level for block in context if block.service_level), None)
    return (ts, _identifier(tx), amount, currency, processor, processor_country, *payer, *payee, purpose, remittance,
            _method(level), message, line)  # fmt: skip


def _method(service_level: str | None) -> str | None:
    """The method a stated scheme makes the transfer: "sepa_credit_transfer" under SEPA, "credit_transfer" under
    any other service level; None when the message states none."""
    if service_level is None:
        return None
    return "sepa_credit_transfer" if service_level.strip().upper() == "SEPA" else "credit_transfer"


def _timestamp(message: str, tx: _Block, payment: _Block | None, group: _Block | None, clock: _Clock) -> int:
    if message == "pacs.008":
        if tx.accepted is not None:
            return clock.micros(tx.accepted, "AccptncDtTm", date_only=False)
        if tx.settled is not None:
            return clock.micros(tx.settled, "IntrBkSttlmDt", date_only=True)
        if group is not None and group.settled is not None:
            return clock.micros(group.settled, "GrpHdr/IntrBkSttlmDt", date_only=True)
        if group is not None and group.created is not None:
            return clock.micros(group.created, "GrpHdr/CreDtTm", date_only=False)
        raise _Invalid("CdtTrfTxInf has no date: no AccptncDtTm or IntrBkSttlmDt, nor GrpHdr/IntrBkSttlmDt or CreDtTm")
    if payment is not None and payment.requested is not None:
        tag = f"PmtInf/{payment.requested_tag}"
        return clock.micros(payment.requested, tag, date_only=not tag.endswith("DtTm"))
    if group is not None and group.created is not None:
        return clock.micros(group.created, "GrpHdr/CreDtTm", date_only=False)
    raise _Invalid("CdtTrfTxInf has no date: no PmtInf/ReqdExctnDt nor GrpHdr/CreDtTm")


def _batch(rows: list[Row]) -> pa.RecordBatch:
    columns = dict(zip(_ROW, zip(*rows, strict=True), strict=True))
    count = len(rows)
    arrays = []
    for spec in RECORD_SCHEMA:
        if spec.name in columns:
            values = columns[spec.name]
            if spec.type == AMOUNT:
                arrays.append(pa.array(values, pa.string()).cast(AMOUNT))  # validated: the cast is exact
            else:
                arrays.append(pa.array(values, spec.type))
        elif spec.name in _CONSTANT:
            arrays.append(pa.repeat(pa.scalar(_CONSTANT[spec.name], spec.type), count))
        else:
            arrays.append(pa.nulls(count, spec.type))
    return pa.RecordBatch.from_arrays(arrays, schema=RECORD_SCHEMA)


def _joined(pieces: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(pieces) == 1:
        return pieces[0]
    return pa.Table.from_batches(pieces, schema=RECORD_SCHEMA).combine_chunks().to_batches()[0]


# --- the reader ---------------------------------------------------------------------------------------------------


class Iso20022Reader:
    """pacs.008 and pain.001 credit-transfer messages, any version, plain or compressed."""

    name = "iso20022"

    def __init__(self, tz: str = "UTC") -> None:
        self.zone = zone_from_name(tz)  # of date-times written without an offset, and of bare dates

    def sniff(self, path: Path, head: bytes) -> bool:
        if _SNIFF_DOCUMENT.search(head) and _SNIFF_MESSAGE.search(head):
            return True
        # An envelope whose header is long enough to push the Document out of the head still says what follows.
        return bool(_SNIFF_HEADER.search(head) and _SNIFF_DEFINITION.search(head))

    def read(self, path: Path, stats: ReadStats, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        if batch_rows < 1:
            raise ValueError(f"batch_rows must be positive, not {batch_rows}")
        return self._read(Path(path), stats, batch_rows)

    def _read(self, path: Path, stats: ReadStats, batch_rows: int) -> Iterator[pa.RecordBatch]:
        # Rows are gathered as Python tuples a piece at a time and turned into Arrow at once: a whole batch
        # of tuples would hold ten times the memory of its Arrow form.
        piece_rows = min(batch_rows, _PIECE_ROWS)
        rows: list[Row] = []
        pieces: list[pa.RecordBatch] = []
        held = 0
        with open_stream(path) as stream:
            for row in _Parse(path, stats, _Clock(self.zone)).rows(stream):
                rows.append(row)
                if len(rows) == piece_rows or held + len(rows) == batch_rows:
                    pieces.append(_batch(rows))
                    held += len(rows)
                    rows = []
                    if held == batch_rows:
                        stats.rows += held
                        yield _joined(pieces)
                        pieces, held = [], 0
        if rows:
            pieces.append(_batch(rows))
            held += len(rows)
        if pieces:
            stats.rows += held
            yield _joined(pieces)


class _Parse:
    """One pass over one file: rows out, problems into the stats."""

    def __init__(self, path: Path, stats: ReadStats, clock: _Clock) -> None:
        self.path, self.stats, self.clock = path, stats, clock
        self.line = 1  # the last line an event was seen at, for a stream that breaks off

    def rows(self, stream: Any) -> Iterator[Row]:
        try:
            yield from self._rows(stream)
        except etree.XMLSyntaxError as exc:
            self.stats.error(self.path, exc.lineno or self.line, f"XML is not well-formed: {exc.msg}")
        except (OSError, pa.ArrowException) as exc:  # a truncated or corrupt .gz/.zst
            self.stats.error(self.path, self.line, f"the input breaks off here ({exc})")

    def _rows(self, stream: Any) -> Iterator[Row]:
        # No DTD, no entities, no network: a message needs none, and each would let a file reach out or blow up.
        # huge_tree stays off: libxml2's limits (10 MB in one text node, depth 256) are far beyond any message
        # and bound what a hostile file can make it allocate; they do not limit the size of the file.
        events = etree.iterparse(
            stream,
            events=("start", "end"),
            tag=_EVENT_TAGS,
            resolve_entities=False,
            load_dtd=False,
            no_network=True,
            remove_comments=True,
            remove_pis=True,
        )
        message: str | None = None  # "pacs.008" or "pain.001" inside an accepted Document
        namespace = ""
        group: _Block | None = None
        payment: _Block | None = None
        documents = 0
        for event, element in events:
            local = element.tag.rpartition("}")[2]
            if event == "start":
                if local == "Document":
                    documents += 1
                    if documents == 1 and _declares_entities(element):
                        self.stats.error(self.path, element.sourceline, _ENTITIES)
                        return
                    namespace = element.tag[1:].partition("}")[0] if element.tag.startswith("{") else ""
                    found = _MESSAGE.fullmatch(namespace)
                    if found is None:
                        self._wrong_namespace(namespace, element.sourceline)
                        return  # another kind of message: nothing in it is a credit transfer
                    message, group, payment = found[1] or found[2], None, None
                elif local == "CdtTrfTxInf" and message == "pain.001" and payment is None:
                    # The PmtInf's own fields all precede its first transaction, so they are complete now.
                    payment = _block(element.getparent(), namespace)
                continue
            self.line = element.sourceline or self.line
            if message is not None:
                if local == "CdtTrfTxInf":
                    row = self._transaction(message, element, namespace, payment, group)
                    if row is not None:
                        yield row
                elif local == "GrpHdr":
                    group = _block(element, namespace)
                    continue  # kept until the first transaction or PmtInf after it is done
                elif local == "PmtInf":
                    payment = None
                elif local == "Document":
                    message = group = payment = None
            _drop(element)
        if not documents:
            root = events.root
            found_tag = root.tag if root is not None else "nothing"
            self.stats.error(self.path, 1, f"no ISO 20022 Document element (the root is {found_tag})")

    def _transaction(
        self, message: str, element: Element, namespace: str, payment: _Block | None, group: _Block | None
    ) -> Row | None:
        line = element.sourceline
        try:
            return _record(message, _block(element, namespace), payment, group, self.clock, line)
        except _Invalid as exc:
            self.stats.error(self.path, line, str(exc))
            return None

    def _wrong_namespace(self, namespace: str, line: int) -> None:
        found = f"namespace {namespace!r}" if namespace else "no namespace"
        self.stats.error(self.path, line, f"Document has {found}; expected {EXPECTED} (a credit transfer)")


# Entities are not expanded (resolve_entities=False), so a value holding one would be read cut short at it.
_ENTITIES = "the DOCTYPE declares entities, which ISO 20022 messages never use: the file is not read"


def _declares_entities(element: Element) -> bool:
    dtd = element.getroottree().docinfo.internalDTD
    return dtd is not None and any(True for _ in dtd.iterentities())


def _drop(element: Element) -> None:
    """Free a processed element and everything before it, which is processed too; memory stays flat."""
    element.clear(keep_tail=True)
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]
