"""The tar format as the shard walker needs it: header layout, type flags, field decoding.

Defined once for the general walker (:mod:`atdata._read.tarwalk`) and its vectorised
fast path (:mod:`atdata._read.tarfast`). A tar file is a sequence of 512-byte *blocks*
(:data:`TAR_BLOCK`): a header block per member, then the member's data padded to whole
blocks, then two zero blocks (the end-of-archive marker). Checksums of many headers are
verified at once with NumPy; a header whose stored checksum is not in the common form is
rechecked the way :mod:`tarfile` checks it.
"""

from __future__ import annotations

import re
import struct

import numpy as np

#: What the walker reads: a whole local read, or a view of a prefetched buffer.
Buffer = bytes | bytearray | memoryview

#: Bytes of one tar block (a header, or a unit of member data).
TAR_BLOCK = 512
#: name, size, typeflag and the first byte of the ustar prefix; the rest is never needed
#: in Python (checksums are verified with NumPy), so it is never turned into objects.
HEADER = struct.Struct("100s24x12s20xc188xB166x")
PREFIX = slice(345, 500)
ZERO_BLOCK = bytes(TAR_BLOCK)
REGULAR = (b"0", b"\0", b"7")
#: Types tarfile reads without skipping any data (links, devices, directories, fifos).
NO_DATA = (b"1", b"2", b"3", b"4", b"5", b"6")
PAX_LOCAL = (b"x", b"X")
PAX_GLOBAL = b"g"
GNU_LONGNAME = b"L"
GNU_LONGLINK = b"K"
GNU_SPARSE = b"S"
EXTENSIONS = (b"x", b"X", b"g", b"L", b"K")
GNU_TYPES = (b"L", b"K", b"S")
#: PAX records that change a member's name or size.
PAX_OVERRIDES = re.compile(rb" (?:path|size)=")
#: WebDataset's split of a member name into key and extension, and its skipped names.
WDS_KEY = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")
WDS_META = re.compile(r"__[^/]*__($|/)")
_OCTAL_WEIGHTS = 8 ** np.arange(5, -1, -1, dtype=np.int64)
#: Weights of the 11 octal digits of a size field, for decoding sizes with NumPy.
SIZE_WEIGHTS = 8 ** np.arange(10, -1, -1, dtype=np.int64)


class TarFormatError(Exception):
    """Internal: a structural problem found mid-walk, turned into a ShardError."""


def prefix(buf: Buffer, pos: int) -> bytes:
    """The ustar prefix of the header at ``pos`` (a long name's directory part) and "/"."""
    header = bytes(buf[pos : pos + TAR_BLOCK])
    return nts(header[PREFIX]) + b"/"


def nts(field_bytes: bytes) -> bytes:
    """A NUL-terminated header field without its NUL and what follows."""
    nul = field_bytes.find(b"\0")
    return field_bytes if nul == -1 else field_bytes[:nul]


def number(field_bytes: bytes) -> int:
    """A numeric header field: octal text, or GNU base-256 for large values."""
    if field_bytes[0] in (0o200, 0o377):
        n = int.from_bytes(field_bytes[1:], "big")
        return n - (256 ** (len(field_bytes) - 1)) if field_bytes[0] == 0o377 else n
    text = nts(field_bytes).strip()
    return int(text, 8) if text else 0


def pax_records(data: bytes) -> dict[str, str]:
    """The records of a PAX extended header's data."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data) and data[pos] != 0:
        space = data.find(b" ", pos)
        if space == -1:
            raise TarFormatError("has a malformed PAX header record")
        length = int(data[pos:space])
        if length <= 0 or pos + length > len(data):
            raise TarFormatError("has a malformed PAX header record length")
        key, eq, value = data[space + 1 : pos + length - 1].partition(b"=")
        if not eq:
            raise TarFormatError("has a malformed PAX header record (no '=')")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records


def first_bad_checksum(buf: Buffer, headers: list[int]) -> int | None:
    """Index of the first header in ``headers`` whose checksum is wrong, or None.

    Sums all headers at once with NumPy; only a header whose stored checksum is not in
    the common ``%06o`` form, or does not match, is rechecked in Python the way
    :mod:`tarfile` checks it (unsigned or signed byte sums).
    """
    if not headers:
        return None
    rows = np.frombuffer(buf, np.uint8, count=len(buf) // TAR_BLOCK * TAR_BLOCK).reshape(-1, TAR_BLOCK)
    suspect = np.flatnonzero(~checksums_ok(rows[np.asarray(headers) // TAR_BLOCK]))
    for i in suspect.tolist():
        if not _checksum_ok(bytes(buf[headers[i] : headers[i] + TAR_BLOCK])):
            return i
    return None


def checksums_ok(headers: np.ndarray) -> np.ndarray:
    """Per header row, whether its checksum, stored in the common ``%06o`` form, matches.

    False also for other forms (``%07o``, signed sums): :func:`_checksum_ok` decides those.
    """
    # Sums wrap at 2**16 (uint16 sums run fastest): a corrupted byte shifts a sum by 1..255,
    # which no wrap hides.
    sums = (
        headers.sum(axis=1, dtype=np.uint16).astype(np.int64) - headers[:, 148:156].sum(axis=1, dtype=np.int64) + 8 * 32
    )
    stored = (headers[:, 148:154].astype(np.int64) - 48) @ _OCTAL_WEIGHTS
    return ((stored - sums) & 0xFFFF) == 0


def _checksum_ok(header: bytes) -> bool:
    try:
        stored = number(header[148:156])
    except ValueError:
        return False
    blanked = header[:148] + b"        " + header[156:]
    unsigned = sum(blanked)
    signed = unsigned - 2 * sum(b for b in blanked if b > 127)
    return stored in (unsigned, signed)
