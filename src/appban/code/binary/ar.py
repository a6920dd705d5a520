"""Unix `ar` archives (static libraries, `.a`), thin or wrapped per architecture in a fat Mach-O header.

Both long-name dialects are read: BSD (`#1/NN`, name stored at the start of the member data, used
by Apple's tools) and GNU (`/NN`, an offset into the `//` name table, used by the NDK's tools).
Errors surface while iterating, since members are produced lazily.
"""

from __future__ import annotations

from collections.abc import Iterator

from appban.code import budget
from appban.code.binary import BytesLike, MalformedBinary, byte_view
from appban.code.binary.macho import fat_slices, is_fat

AR_MAGIC = b"!<arch>\n"
HEADER_SIZE = 60
MAX_MEMBERS = 1_000_000
# Symbol index members: GNU ("/", "/SYM64/") and BSD/Apple ("__.SYMDEF" and its variants).
SYMBOL_TABLES = frozenset({"/", "/SYM64/", "__.SYMDEF", "__.SYMDEF SORTED", "__.SYMDEF_64", "__.SYMDEF_64 SORTED"})


def ar_members(data: BytesLike) -> Iterator[tuple[str, bytes]]:
    """(member name, member bytes) of each member, skipping the symbol index and GNU name table."""
    view = byte_view(data)
    if view[:8] != AR_MAGIC:
        raise MalformedBinary("not an ar archive")
    gnu_names: dict[int, bytes] = {}
    offset = len(AR_MAGIC)
    for count in range(MAX_MEMBERS + 1):
        if offset >= len(view):
            return
        if count == MAX_MEMBERS:
            raise MalformedBinary("too many ar members")
        budget.tick(count)
        raw_name, start, end = _member_header(view, offset)
        # Members are padded to an even offset; a missing final pad byte just ends the loop.
        offset = end + (end & 1)
        if raw_name.strip() == b"//":
            gnu_names = _gnu_name_table(view[start:end].tobytes())
            continue
        name, start = _member_name(view, raw_name, start, end, gnu_names)
        if name not in SYMBOL_TABLES:
            yield name, view[start:end].tobytes()


def static_library_objects(data: BytesLike) -> Iterator[tuple[str, bytes]]:
    """Members of a thin `.a`, or `arch/member` for each slice of a fat `.a` (e.g. `arm64/WXApi.o`)."""
    view = byte_view(data)
    if view[:8] == AR_MAGIC:
        yield from ar_members(view)
    elif is_fat(view):
        for cpu, part in fat_slices(view):
            if part[:8] != AR_MAGIC:
                raise MalformedBinary(f"fat slice {cpu} is not an ar archive")
            for name, body in ar_members(part):
                yield f"{cpu}/{name}", body
    else:
        raise MalformedBinary("not a static library")


def _member_header(view: memoryview, offset: int) -> tuple[bytes, int, int]:
    """(raw 16-byte name field, data start, data end) of the member header at offset."""
    if offset + HEADER_SIZE > len(view):
        raise MalformedBinary("ar member header truncated")
    header = view[offset : offset + HEADER_SIZE].tobytes()
    if header[58:60] != b"`\n":
        raise MalformedBinary("bad ar member header terminator")
    start = offset + HEADER_SIZE
    end = start + _decimal(header[48:58])
    if end > len(view):
        raise MalformedBinary("ar member data outside the file")
    return header[:16], start, end


def _member_name(view: memoryview, raw: bytes, start: int, end: int, gnu_names: dict[int, bytes]) -> tuple[str, int]:
    """The member's name and where its contents start (BSD long names occupy the first bytes)."""
    stripped = raw.rstrip(b" ")
    if stripped.startswith(b"#1/"):
        length = _decimal(stripped[3:])
        if length > end - start:
            raise MalformedBinary("BSD long name longer than its member")
        name = view[start : start + length].tobytes().rstrip(b"\x00")
        start += length
    elif stripped.startswith(b"/") and stripped[1:].isdigit():
        name_offset = int(stripped[1:])
        if name_offset not in gnu_names:
            raise MalformedBinary("GNU long name offset not in the name table")
        name = gnu_names[name_offset]
    elif stripped.endswith(b"/") and stripped not in (b"/", b"/SYM64/"):
        name = stripped[:-1]  # GNU short names end in "/" so that they may contain spaces
    else:
        name = stripped
    return name.decode("utf-8", "replace"), start


def _gnu_name_table(table: bytes) -> dict[int, bytes]:
    """Offset -> name for each `name/\\n` entry of a GNU `//` member, read once so lookups stay cheap."""
    names: dict[int, bytes] = {}
    offset = 0
    for entry in table.split(b"\n"):
        name = entry.rstrip(b"\x00")
        names[offset] = name[:-1] if name.endswith(b"/") else name
        offset += len(entry) + 1
    return names


def _decimal(field: bytes) -> int:
    digits = field.strip(b" ")
    if not digits.isdigit():
        raise MalformedBinary("bad decimal field in ar header")
    return int(digits)
