"""Enforcement outputs: the law at an instant plus the network indicators, as files network operators load.

`blocklist()` asks `decide()` about every app the indicator set names, for the infrastructure categories
(hosting, CDN, transit), at one place and instant, and keeps the indicators of the apps a rule prohibits
there and then. The writers turn that list into a DNS Response Policy Zone (BIND, Unbound, Knot Resolver,
PowerDNS Recursor), a hosts file, an Unbound `local-zone` snippet, a dnsmasq snippet, an adblock-style DNS
filter list (AdGuard Home, AdGuard DNS), an nftables script and Suricata rules.

A domain entry is a suffix (the name and every name under it) or an exact host (that name only: a TikTok
name on a shared CDN such as `p16-tiktokcdn-com.akamaized.net`, whose siblings are other customers'). Every
writer keeps the difference, with the construct its format has for it; where a format has none, the file
says what it does instead.

The files are snapshots, not time-aware: each header states the place, instant, scope and rulebook version
it was computed for (and the knowledge bundle the rulebook came from, when one is installed), why the list is
what it is, and its enforcement status (prohibited and enforceable, or prohibited with executive enforcement
suspended, as for PAFACA in 2025), so an operator can tell a stale file from a current one and an enforced
prohibition from one the executive has set aside. Every entry carries the instrument and citation of the rule
that prohibits it, because an operator who blocks traffic must be able to say under which order.

Names and addresses are validated before they are written: the outputs are configuration files that
daemons parse, and an indicator set is data, not trusted code (a quote or newline in a name would
otherwise inject configuration).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import ipaddress
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from appban.engine.decide import Decision, decide, resolve_category, resolve_place
from appban.engine.instants import InstantError, iso, parse_instant
from appban.export.status import Listed, enforcement_line
from appban.knowledge.install import bundle_of
from appban.network.indicators import IndicatorSet
from appban.rulebook.loader import Rulebook
from appban.vocabulary import Category, Enforcement, RuleStatus, Verdict

Kind = Literal["domain", "prefix"]
ListScope = Literal["app", "company"]
_Net = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_CATEGORIES: tuple[str, ...] = ("internet_hosting", "cdn", "transit_peering")
DEFAULT_RPZ_ORIGIN = "rpz.appban.local."

# Suricata sids: a block of our own from 9100000 up to 9999999, two per indicator (DNS and TLS rules).
SID_BASE = 9_100_000
_SID_SLOTS = (9_999_999 - SID_BASE + 1) // 2


@dataclass(frozen=True)
class BlockEntry:
    """One name suffix or network to block, with the rule that requires it."""

    kind: Kind
    value: str  # a domain suffix (matching whole labels: the name and every name under it) or a CIDR
    app: str
    scope: str  # the indicator's scope: "app" or "company"
    category: str  # the first of the asked categories that the law prohibits for the app
    verdict: str  # "prohibited", or "enjoined" when asked to list enjoined apps too
    instrument: str
    cite: str
    url: str
    # "enforceable" or "suspended": the executive may decline to enforce a prohibition that is law
    # (e.g. a non-enforcement order); the operator should know, so it is carried into every comment.
    enforcement: str = "enforceable"
    # A domain that is an exact host: that name only, never the names under it (indicators' `host:`).
    exact: bool = False


@dataclass(frozen=True)
class Provenance:
    """What a list was computed for; every writer prints it as the file's header."""

    where: str
    at: str  # ISO 8601 UTC instant
    scope: str
    categories: tuple[str, ...]
    include_enjoined: bool
    rulebook_version: str
    reason: str
    # Whether prohibitions the executive does not enforce were left out, and the enforcement status of what
    # is listed (appban.export.status): every header states both.
    exclude_suspended: bool = False
    enforcement: str = ""
    bundle: str | None = None  # the knowledge bundle the rulebook came from; None for the package's own data


@dataclass(frozen=True)
class Blocklist:
    entries: list[BlockEntry]
    reason: str
    provenance: Provenance


# ---- computing the list ------------------------------------------------------------------------------------


_HUMAN_CATEGORY = {"internet_hosting": "hosting", "cdn": "CDN", "transit_peering": "transit"}


def _human_categories(categories: Sequence[Category]) -> str:
    words = [_HUMAN_CATEGORY.get(c.value, c.value.replace("_", " ")) for c in categories]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]


def _prohibiting_line(decision: Decision, status: RuleStatus) -> tuple[str, str, str]:
    """(instrument, cite, url) of the first rule line with `status`, cited as the decision cites it."""
    for line in decision.rules:
        if line.status is status:
            # The citations are keyed by cite, and one instrument can carry several (the instrument's own
            # and a provision's): prefer the one the rule line names, else any of that instrument's.
            mine = [c for c in decision.citations if c.instrument == line.instrument]
            chosen = next((c for c in mine if c.cite == line.cite), mine[0] if mine else None)
            return line.instrument, line.cite, chosen.url if chosen is not None else ""
    raise AssertionError(f"decision {decision.verdict} for {decision.app} has no {status} rule line")


def compile_blocklist(
    rulebook: Rulebook,
    indicators: IndicatorSet,
    where: str,
    at: dt.datetime | str,
    scope: ListScope = "app",
    categories: Iterable[str] = DEFAULT_CATEGORIES,
    include_enjoined: bool = False,
    exclude_suspended: bool = False,
) -> Blocklist:
    """`blocklist()` plus the provenance the writers print in their headers.

    With `exclude_suspended`, a prohibition the executive does not enforce lists nothing (another category's
    enforceable prohibition still lists the app); the apps so left out are named in the reason.
    """
    if scope not in ("app", "company"):
        raise ValueError(f"scope must be 'app' or 'company', not {scope!r}")
    cats = list(dict.fromkeys(resolve_category(c) for c in categories))
    if not cats:
        raise ValueError("categories: give at least one category")
    place = resolve_place(where)
    try:
        instant = parse_instant(at)
    except InstantError as exc:
        raise ValueError(f"at: {exc}") from None
    wanted = {Verdict.PROHIBITED: RuleStatus.PROHIBITED}
    if include_enjoined:
        wanted[Verdict.ENJOINED] = RuleStatus.ENJOINED

    apps = list(dict.fromkeys([d.app for d in indicators.domains] + [p.app for p in indicators.prefixes]))
    # app -> the template entry every indicator of the app copies (None: the app is not listed)
    templates: dict[str, BlockEntry | None] = {}
    enjoined_left_out: list[str] = []
    suspended_left_out: list[str] = []
    for app in apps:
        templates[app] = None
        for category in cats:
            decision = decide(app, category, place, instant, rulebook=rulebook)
            status = wanted.get(decision.verdict)
            if status is None:
                if decision.verdict is Verdict.ENJOINED and app not in enjoined_left_out:
                    enjoined_left_out.append(app)
                continue
            if exclude_suspended and status is RuleStatus.PROHIBITED and decision.enforcement is Enforcement.SUSPENDED:
                if app not in suspended_left_out:
                    suspended_left_out.append(app)
                continue
            instrument, cite, url = _prohibiting_line(decision, status)
            templates[app] = BlockEntry(
                kind="domain",
                value="",
                app=app,
                scope="",
                category=category.value,
                verdict=decision.verdict.value,
                instrument=instrument,
                cite=cite,
                url=url,
                enforcement=decision.enforcement.value if status is RuleStatus.PROHIBITED else "not_applicable",
            )
            break
    enjoined_left_out = [app for app in enjoined_left_out if templates[app] is None]
    suspended_left_out = [app for app in suspended_left_out if templates[app] is None]

    scopes = {"app"} if scope == "app" else {"app", "company"}
    entries: list[BlockEntry] = []
    seen: set[tuple[str, str]] = set()
    left_out_by_scope = 0

    def add(kind: Kind, value: str, app: str, indicator_scope: str, exact: bool = False) -> None:
        nonlocal left_out_by_scope
        template = templates.get(app)
        if template is None:
            return
        if indicator_scope not in scopes:
            left_out_by_scope += 1
            return
        if (kind, value) in seen:  # the same network listed for two apps: the first one cites it
            return
        seen.add((kind, value))
        entries.append(dataclasses.replace(template, kind=kind, value=value, scope=indicator_scope, exact=exact))

    for domain in indicators.domains:
        add("domain", domain.name, domain.app, domain.scope, domain.exact)
    for group in indicators.prefixes:
        for prefix in group.prefixes:
            add("prefix", prefix, group.app, group.scope)

    when = iso(instant)
    what = _human_categories(cats)
    if not entries:
        enforced = " the executive enforces" if suspended_left_out else ""
        reason = f"no prohibition{enforced} covers {what} of any listed app in {place} at {when}"
        listed = [app for app, template in templates.items() if template is not None]
        if listed and left_out_by_scope:
            reason += f" (prohibited: {', '.join(listed)}, but they have only company-scope indicators here,"
            reason += " left out at scope=app)"
    else:
        domains = sum(1 for e in entries if e.kind == "domain" and not e.exact)
        exact_hosts = sum(1 for e in entries if e.kind == "domain" and e.exact)
        prefixes = len(entries) - domains - exact_hosts
        listed = list(dict.fromkeys(e.app for e in entries))
        instruments = list(dict.fromkeys(e.instrument for e in entries))
        verdicts = "/".join(dict.fromkeys(e.verdict for e in entries))
        covered = _human_categories([Category(c) for c in dict.fromkeys(e.category for e in entries)])
        reason = (
            f"{domains} domain suffixes, {exact_hosts} exact hosts and {prefixes} prefixes of {', '.join(listed)}: "
            f"{covered} {verdicts} "
            f"in {place} at {when} under {', '.join(instruments)}"
        )
        suspended = list(dict.fromkeys(e.app for e in entries if e.enforcement == "suspended"))
        if suspended:
            reason += f"; executive enforcement suspended for {', '.join(suspended)} (the prohibition is law)"
        if left_out_by_scope:
            reason += f"; {left_out_by_scope} company-scope indicators left out (scope=company lists them)"
    if enjoined_left_out:
        reason += f"; enjoined, not listed: {', '.join(enjoined_left_out)}"
    if suspended_left_out:
        reason += f"; executive enforcement suspended, left out on request: {', '.join(suspended_left_out)}"
    listed_status = [Listed(e.app, e.verdict, e.enforcement) for e in entries]
    provenance = Provenance(
        where=place,
        at=when,
        scope=scope,
        categories=tuple(c.value for c in cats),
        include_enjoined=include_enjoined,
        rulebook_version=rulebook.version,
        reason=reason,
        exclude_suspended=exclude_suspended,
        enforcement=enforcement_line(listed_status, suspended_left_out),
        bundle=bundle_of(rulebook),
    )
    return Blocklist(entries=entries, reason=reason, provenance=provenance)


def blocklist(
    rulebook: Rulebook,
    indicators: IndicatorSet,
    where: str,
    at: dt.datetime | str,
    scope: ListScope = "app",
    categories: Iterable[str] = DEFAULT_CATEGORIES,
    include_enjoined: bool = False,
) -> tuple[list[BlockEntry], str]:
    """The indicators to block in `where` at `at`, and a one-line reason.

    An indicator is listed when `decide()` says its app is prohibited (or, with `include_enjoined`, enjoined)
    for any of `categories` there and then. Scope "app" keeps app-specific indicators only; "company" adds
    company-wide ones (shared infrastructure that may serve other apps too). Each entry cites the first
    prohibiting rule of the first category that prohibits. `at` must carry a UTC offset.
    """
    result = compile_blocklist(rulebook, indicators, where, at, scope, categories, include_enjoined)
    return result.entries, result.reason


# ---- validation and comments ---------------------------------------------------------------------------------

_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_SLUG = re.compile(r"[A-Za-z0-9_.-]+")


def _domain(value: str) -> str:
    """A lower-case ASCII (punycode) domain name without the trailing dot, or ValueError."""
    name = value.strip().rstrip(".").lower()
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError(f"{value!r} is not a valid domain name") from None
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"{value!r} is not a valid domain name")
    return name


def _network(value: str) -> _Net:
    return ipaddress.ip_network(value, strict=True)


def _slug(value: str, what: str) -> str:
    """App and instrument ids go into quoted strings (Suricata msg): keep them to safe characters."""
    if not _SLUG.fullmatch(value):
        raise ValueError(f"{what} {value!r} has characters that cannot be written into a rule")
    return value


_FOLD = str.maketrans({"\u2013": "-", "\u2014": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                       "\u00a7": "sec.", "\u00b6": "para."})  # fmt: skip


def _ascii(text: str) -> str:
    """One line of plain ASCII: some of these parsers read bytes, and a newline would end the comment."""
    text = unicodedata.normalize("NFKD", text.translate(_FOLD))
    text = text.encode("ascii", "ignore").decode("ascii")
    return " ".join(text.split())


def _entry_comment(entry: BlockEntry) -> str:
    enforcement = "; executive enforcement suspended" if entry.enforcement == "suspended" else ""
    exact = "exact host (not the names under it) " if entry.kind == "domain" and entry.exact else ""
    return _ascii(
        f"{exact}{entry.app} ({entry.scope} scope), {entry.category} {entry.verdict}{enforcement}: "
        f"{entry.instrument} -- {entry.cite} <{entry.url}>"
    )


_SCOPE_TEXT = {"app": "app-specific indicators only", "company": "app and company-wide indicators"}


def _header(mark: str, title: str, provenance: Provenance | None, notes: Sequence[str], count: str) -> list[str]:
    lines = [f"appban enforcement output: {title}"]
    if provenance is None:
        lines.append("provenance not given: where, instant and rulebook unknown (write with compile_blocklist())")
    else:
        lines += [
            f"where: {provenance.where}",
            f"at: {provenance.at}",
            f"scope: {provenance.scope} ({_SCOPE_TEXT.get(provenance.scope, provenance.scope)})",
            f"categories: {', '.join(provenance.categories)}",
            f"verdicts listed: prohibited{', enjoined' if provenance.include_enjoined else ''}"
            + (" (prohibitions the executive does not enforce left out)" if provenance.exclude_suspended else ""),
            f"enforcement: {provenance.enforcement or 'not stated'}",
            f"rulebook: {provenance.rulebook_version}",
            *([f"bundle: {provenance.bundle}"] if provenance.bundle else []),
            f"reason: {provenance.reason}",
        ]
    lines += [
        "A snapshot of the law at that instant, not time-aware: regenerate it when the instant or the law changes.",
        *(note for note in notes if note),
        count,
    ]
    return [f"{mark} {_ascii(line)}".rstrip() for line in lines] + [""]


def _domains(entries: Sequence[BlockEntry]) -> list[tuple[str, BlockEntry]]:
    """The listed names, once each; an exact host that a listed suffix already covers is left out.

    Left in, it would weaken the suffix in formats whose exact construct is a zone of its own (Unbound's
    transparent local-zone resolves the names under the host normally, inside the suffix's NXDOMAIN zone).
    """
    seen: set[str] = set()
    out: list[tuple[str, BlockEntry]] = []
    for entry in entries:
        if entry.kind == "domain":
            name = _domain(entry.value)
            if name not in seen:
                seen.add(name)
                out.append((name, entry))
    suffixes = {name for name, entry in out if not entry.exact}
    return [(name, entry) for name, entry in out if not (entry.exact and _covered(name, suffixes))]


def _covered(name: str, suffixes: set[str]) -> bool:
    """Whether a suffix in `suffixes` is `name` or a parent of it, by whole labels."""
    labels = name.split(".")
    return any(".".join(labels[i:]) in suffixes for i in range(len(labels)))


def _networks(entries: Sequence[BlockEntry]) -> list[tuple[_Net, BlockEntry]]:
    seen: set[str] = set()
    out: list[tuple[_Net, BlockEntry]] = []
    for entry in entries:
        if entry.kind == "prefix":
            network = _network(entry.value)
            if str(network) not in seen:
                seen.add(str(network))
                out.append((network, entry))
    return out


def _count(domains: Sequence[tuple[str, BlockEntry]], prefixes: int) -> str:
    if not domains and prefixes == 0:
        return "entries: none -- this list is empty on purpose (see reason)"
    exact = sum(1 for _, entry in domains if entry.exact)
    return f"entries: {len(domains) - exact} domain suffixes, {exact} exact hosts, {prefixes} prefixes"


# ---- writers -------------------------------------------------------------------------------------------------


def rpz(
    entries: Sequence[BlockEntry],
    provenance: Provenance | None = None,
    *,
    origin: str = DEFAULT_RPZ_ORIGIN,
    serial: int | None = None,
) -> str:
    """A DNS Response Policy Zone: every listed suffix and every name under it answers NXDOMAIN; an exact
    host answers NXDOMAIN for that name only.

    `CNAME .` is the RPZ NXDOMAIN action; a trigger matches its exact name only, hence the `*.` twin for
    the names below a suffix, and no twin for an exact host. The serial defaults to the instant's Unix
    time: the same instant always gives the same file, and a later instant a higher serial, as zone
    transfers need.
    """
    zone = _domain(origin) + "."
    if serial is None:
        serial = int(dt.datetime.fromisoformat(provenance.at.replace("Z", "+00:00")).timestamp()) if provenance else 1
    serial %= 2**32
    domains = _domains(entries)
    for name, _ in domains:
        if len(f"*.{name}.{zone}") > 254:
            raise ValueError(f"{name!r} is too long to be a trigger in zone {zone}")
    skipped = len(_networks(entries))
    lines = _header(
        ";",
        "DNS Response Policy Zone (RPZ)",
        provenance,
        [
            f"Load it as zone {zone} (BIND response-policy, Unbound rpz:, Knot Resolver, PowerDNS Recursor).",
            "Action: CNAME . = NXDOMAIN for the listed name; the *. twin covers every name under a suffix.",
            "An exact host (a name on a shared CDN) has no *. twin: the names under it are other customers'.",
            f"IP prefixes are not in this zone ({skipped} listed; see the nftables output)." if skipped else "",
        ],
        _count(domains, 0),
    )
    lines += [
        f"$ORIGIN {zone}",
        "$TTL 300",
        # Refresh, retry and expire only matter to secondaries that transfer the zone; negative TTL 60
        # keeps a stale NXDOMAIN short when the law changes and the zone is regenerated.
        f"@ IN SOA localhost. hostmaster.localhost. {serial} 3600 600 86400 60",
        "@ IN NS localhost.",  # a zone needs one; RPZ never uses it
        "",
    ]
    for name, entry in domains:
        twin = [] if entry.exact else [f"*.{name} CNAME ."]
        lines += [f"; {_entry_comment(entry)}", f"{name} CNAME .", *twin, ""]
    return "\n".join(lines)


def hosts(entries: Sequence[BlockEntry], provenance: Provenance | None = None) -> str:
    """hosts-file lines `0.0.0.0 name`, for resolvers and devices that only read a hosts file."""
    domains = _domains(entries)
    skipped = len(_networks(entries))
    lines = _header(
        "#",
        "hosts file",
        provenance,
        [
            "A hosts file cannot hold wildcards: each line blocks that exact name only, not the names under it",
            "(a line for example.com does not block www.example.com). Use the RPZ or Unbound output for suffixes;",
            "exact hosts (names on shared CDNs) are meant exactly as written here.",
            f"IP prefixes cannot be expressed here ({skipped} listed; see the nftables output)." if skipped else "",
        ],
        _count(domains, 0),
    )
    for name, entry in domains:
        lines += [f"# {_entry_comment(entry)}", f"0.0.0.0 {name}"]
    return "\n".join(lines) + "\n"


def unbound(entries: Sequence[BlockEntry], provenance: Provenance | None = None) -> str:
    """An Unbound `server:` snippet (e.g. for /etc/unbound/unbound.conf.d/) of `always_nxdomain` local zones.

    always_nxdomain rather than always_refuse: NXDOMAIN is a final answer ("no such name") that stub
    resolvers and applications accept, the same action as the RPZ output; REFUSED reads as a server
    fault, so stubs move on to the next nameserver in resolv.conf and bypass the block. A local zone
    covers its name and every name under it, so one line per suffix suffices.

    Every blocking local-zone type covers the names under it, so an exact host is a `transparent` zone
    with null address data instead (unbound.conf(5), local-zone: a transparent zone answers its own data,
    NODATA for the name's other types, and resolves every other name normally): the host answers 0.0.0.0
    and ::, and its siblings and children on the shared CDN resolve as before.
    """
    domains = _domains(entries)
    skipped = len(_networks(entries))
    lines = _header(
        "#",
        "Unbound local-zone configuration",
        provenance,
        [
            "Include it from unbound.conf; each always_nxdomain local-zone answers NXDOMAIN for the name and every",
            "name under it. An exact host is a transparent local-zone answering 0.0.0.0 and :: for that name only.",
            f"IP prefixes are not in this file ({skipped} listed; see the nftables output)." if skipped else "",
        ],
        _count(domains, 0),
    )
    lines.append("server:")
    for name, entry in domains:
        lines.append(f"    # {_entry_comment(entry)}")
        if entry.exact:
            lines += [
                f'    local-zone: "{name}." transparent',
                f'    local-data: "{name}. A 0.0.0.0"',
                f'    local-data: "{name}. AAAA ::"',
            ]
        else:
            lines.append(f'    local-zone: "{name}." always_nxdomain')
    return "\n".join(lines) + "\n"


def dnsmasq(entries: Sequence[BlockEntry], provenance: Provenance | None = None) -> str:
    """A dnsmasq configuration snippet (e.g. for /etc/dnsmasq.d/; Pi-hole v5 reads the same directory).

    dnsmasq(8): `address=/name/` with no address answers NXDOMAIN for the name and all its subdomains,
    by whole labels; it has no exact-name form. An exact host is a `host-record=name,0.0.0.0,::` instead,
    which answers that name only (null addresses; host records are not expanded to other names).
    """
    domains = _domains(entries)
    skipped = len(_networks(entries))
    lines = _header(
        "#",
        "dnsmasq configuration",
        provenance,
        [
            "Put it in /etc/dnsmasq.d/ (or conf-file=); address=/name/ answers NXDOMAIN for the name and every",
            "name under it. dnsmasq has no exact form of address=: an exact host is a host-record answering",
            "0.0.0.0 and :: for that name only (the first such record also answers the reverse lookup of 0.0.0.0).",
            f"IP prefixes are not in this file ({skipped} listed; see the nftables output)." if skipped else "",
        ],
        _count(domains, 0),
    )
    for name, entry in domains:
        line = f"host-record={name},0.0.0.0,::" if entry.exact else f"address=/{name}/"
        lines += [f"# {_entry_comment(entry)}", line]
    return "\n".join(lines) + "\n"


def adblock(entries: Sequence[BlockEntry], provenance: Provenance | None = None) -> str:
    """An adblock-style DNS filter list for AdGuard Home and AdGuard DNS (their DNS filtering syntax).

    `||name^` blocks the name and every name under it; `|name^` (the start anchor, one bar) blocks that
    exact name only, as AdGuard Home writes its own hosts-file rules since v0.107.1 (AdGuardHome#3998).
    Comments start with `!`.
    """
    domains = _domains(entries)
    skipped = len(_networks(entries))
    lines = _header(
        "!",
        "adblock-style DNS filter list (AdGuard Home, AdGuard DNS)",
        provenance,
        [
            "Add it as a blocklist; ||name^ blocks the name and every name under it, |name^ that exact name only.",
            f"IP prefixes are not in this list ({skipped} listed; see the nftables output)." if skipped else "",
        ],
        _count(domains, 0),
    )
    for name, entry in domains:
        lines += [f"! {_entry_comment(entry)}", f"|{name}^" if entry.exact else f"||{name}^"]
    return "\n".join(lines) + "\n"


def _nft_set(name: str, family: str, members: Sequence[tuple[_Net, BlockEntry]]) -> list[str]:
    lines = [f"    set {name} {{", f"        type {family}", "        flags interval"]
    # auto-merge: listed networks may overlap (company and app ranges), which an interval set rejects.
    lines.append("        auto-merge")
    if members:  # nft rejects an empty `elements = { }`: an empty set has no elements line at all
        lines.append("        elements = {")
        for i, (network, entry) in enumerate(members):
            comma = "," if i < len(members) - 1 else ""
            lines += [f"            # {_entry_comment(entry)}", f"            {network}{comma}"]
        lines.append("        }")
    lines.append("    }")
    return lines


def nftables(entries: Sequence[BlockEntry], provenance: Provenance | None = None) -> str:
    """An nftables script (`nft -f`) dropping forwarded traffic to the listed networks.

    It replaces the whole `inet appban` table in one transaction (declare, delete, define), so loading a
    newer file never leaves stale networks behind and loading it twice does not duplicate rules.
    """
    networks = _networks(entries)
    v4 = [(n, e) for n, e in networks if n.version == 4]
    v6 = [(n, e) for n, e in networks if n.version == 6]
    skipped = len(_domains(entries))
    lines = [
        "#!/usr/sbin/nft -f",
        *_header(
            "#",
            "nftables script",
            provenance,
            [
                "Load it with `nft -f`; it replaces table inet appban as a whole.",
                f"Domain names are not in this file ({skipped} listed; see the RPZ output)." if skipped else "",
            ],
            _count([], len(networks)),
        ),
        # Declaring the table first makes the delete valid when it does not exist yet.
        "table inet appban",
        "delete table inet appban",
        "",
        "table inet appban {",
    ]

    lines += _nft_set("blocked_v4", "ipv4_addr", v4)
    lines += _nft_set("blocked_v6", "ipv6_addr", v6)
    lines += [
        "",
        "    chain forward {",
        # priority 0 with policy accept: drop only the listed destinations and leave other filtering alone.
        "        type filter hook forward priority 0; policy accept;",
        "        # counter: the operator can show that the block is in place and hit",
        "        ip daddr @blocked_v4 counter drop",
        "        ip6 daddr @blocked_v6 counter drop",
        "    }",
        "}",
        "",
    ]
    return "\n".join(lines)


def _sids(entries: Sequence[BlockEntry]) -> dict[tuple[str, str], int]:
    """A stable slot per (kind, value): a hash picks it; collisions probe forward in sorted key order.

    The same set of entries always gets the same sids whatever their order; a value keeps its sid across
    instants unless it collides with another listed value, which with ~450,000 slots is rare.
    """
    taken: set[int] = set()
    out: dict[tuple[str, str], int] = {}
    for key in sorted({(e.kind, e.value if e.kind == "prefix" else _domain(e.value)) for e in entries}):
        digest = hashlib.sha256(f"{key[0]}:{key[1]}".encode()).digest()
        slot = int.from_bytes(digest[:8], "big") % _SID_SLOTS
        while slot in taken:
            slot = (slot + 1) % _SID_SLOTS
        taken.add(slot)
        out[key] = SID_BASE + 2 * slot
    return out


def suricata(entries: Sequence[BlockEntry], provenance: Provenance | None = None) -> str:
    """Suricata rules: DNS queries and TLS SNI for each listed name and the names under it, and IP rules.

    `dotprefix` prepends a dot to the buffer, so content ".tiktok.com" with `endswith` matches tiktok.com
    and www.tiktok.com but never nottiktok.com. An exact host is `startswith; endswith` on the name itself,
    which together match the whole buffer and nothing else. The rules alert; in IPS mode change `alert`
    to `drop`.
    """
    sids = _sids(entries)
    domains = _domains(entries)
    networks = _networks(entries)
    lines = _header(
        "#",
        "Suricata rules",
        provenance,
        [
            f"sids: stable per indicator, from {SID_BASE} to {SID_BASE + 2 * _SID_SLOTS - 1}; rev 1.",
            "They alert; in IPS mode change alert to drop to enforce.",
            "A suffix matches the name and the names under it; an exact host (startswith; endswith) that name only.",
        ],
        _count(domains, len(networks)),
    )

    def tail(entry: BlockEntry, sid: int) -> str:
        cite = re.sub(r"[^A-Za-z0-9.-]+", "_", _ascii(entry.cite)).strip("_") or "none"
        return (
            f"sid:{sid}; rev:1; metadata: appban_instrument {_slug(entry.instrument, 'instrument')}, "
            f"appban_cite {cite};)"
        )

    for name, entry in domains:
        sid = sids[("domain", name)]
        msg = f'msg:"appban: {_slug(entry.app, "app")} {_slug(entry.instrument, "instrument")}";'
        if entry.exact:
            match = f'content:"{name}"; startswith; endswith; nocase;'
        else:
            match = f'dotprefix; content:".{name}"; endswith; nocase;'
        lines += [
            f"# {_entry_comment(entry)}",
            f"alert dns any any -> any any ({msg} dns.query; {match} {tail(entry, sid)}",
            f"alert tls any any -> any any ({msg} tls.sni; {match} {tail(entry, sid + 1)}",
        ]
    for network, entry in networks:
        sid = sids[("prefix", entry.value)]
        msg = f'msg:"appban: {_slug(entry.app, "app")} {_slug(entry.instrument, "instrument")}";'
        lines += [f"# {_entry_comment(entry)}", f"alert ip any any -> [{network}] any ({msg} {tail(entry, sid)}"]
    return "\n".join(lines) + "\n"


Writer = Callable[[Sequence[BlockEntry], Provenance | None], str]

WRITERS: dict[str, Writer] = {
    "rpz": rpz,
    "hosts": hosts,
    "unbound": unbound,
    "dnsmasq": dnsmasq,
    "adblock": adblock,
    "nftables": nftables,
    "suricata": suricata,
}
