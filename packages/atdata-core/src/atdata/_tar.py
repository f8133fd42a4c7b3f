"""Walk tar shards ourselves: the msgpack members of a shard, as WebDataset groups them.

``tarfile`` builds a ``TarInfo`` object per member and reads member data through file
objects; for shards of many small samples that costs more than decoding the samples.
Here a shard is read in large blocks (local files with plain ``read`` calls of
:data:`CHUNK` bytes, other schemes through :func:`atdata.open_url`), and the 512-byte
headers are unpacked with one :mod:`struct` call each. Member data is never copied:
the reader gets ``(key, start, end)`` offsets into the block.

What counts as a sample follows WebDataset exactly, so both read the same shards the
same way: only regular files; names of the form ``__x__`` are skipped; the key is the
name up to the first dot of its last path component and the rest (lower-cased) is the
extension; consecutive members with the same key form one sample; a repeated extension
within one sample is an error. PAX extended headers (``path``, ``size``) and GNU long
names are honoured, as :mod:`tarfile` does. Of each sample only the ``msgpack`` member
is returned; samples without one are skipped.

Where :mod:`tarfile` (and so WebDataset) silently stops at a corrupt header in the
middle of a shard, this walker raises :class:`~atdata.errors.ShardError` naming the
shard, the byte offset and the member before it. Header checksums are verified for a
whole block at once with NumPy. A walk returns the samples found before an error
together with the error, so every reader path yields the same samples and then fails
at the same point.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

from .errors import ShardError
from .openers import local_path, open_url

__all__ = ["CHUNK", "Block", "ShardWalker", "iter_blocks"]

#: Bytes read per call; a sample larger than this is read in as many calls as it needs.
CHUNK = 8 << 20

_BLOCK = 512
# name, size, chksum, typeflag, magic, prefix (other fields skipped).
_HEADER = struct.Struct("100s24x12s12x8sc100x6s82x155s12x")
_ZERO = bytes(_BLOCK)
_REGULAR = (b"0", b"\0", b"7")
# Types tarfile reads without skipping any data (links, devices, directories, fifos).
_NO_DATA = (b"1", b"2", b"3", b"4", b"5", b"6")
_PAX_LOCAL = (b"x", b"X")
_PAX_GLOBAL = b"g"
_GNU_LONGNAME = b"L"
_GNU_LONGLINK = b"K"
_GNU_SPARSE = b"S"
_EXTENSIONS = (b"x", b"X", b"g", b"L", b"K")
_WDS_KEY = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")
_WDS_META = re.compile(r"__[^/]*__($|/)")
_OCTAL_WEIGHTS = 8 ** np.arange(5, -1, -1, dtype=np.int64)


@dataclass(slots=True)
class Block:
    """Samples found in one buffer of a shard.

    Attributes
    ----------
    url
        The shard the buffer came from.
    buf
        The bytes read; ``entries`` index into it.
    entries
        ``(key, start, end)`` of each sample's msgpack member, in shard order.
    """

    url: str
    buf: bytes
    entries: list[tuple[str, int, int]]


@dataclass(slots=True)
class ShardWalker:
    """Tar parsing state for one shard, fed buffer after buffer.

    Parameters
    ----------
    url
        The shard's URL, quoted in every error.
    """

    url: str
    last_member: str | None = None
    ended: bool = False
    _key: str | None = None
    _suffixes: set[str] = field(default_factory=set)
    _global_pax: dict[str, str] = field(default_factory=dict)
    _offset: int = 0  # shard offset of buf[0], for error messages

    def walk(self, buf: bytes, final: bool) -> tuple[list[tuple[str, int, int]], int, ShardError | None]:
        """Parse every complete member of ``buf``, which starts at a header.

        Parameters
        ----------
        buf
            Shard bytes from the end of the last complete member onwards.
        final
            True when the shard has no bytes after ``buf``.

        Returns
        -------
        entries, consumed, error
            The samples found, how many bytes of ``buf`` they (and the members between
            them) use, and the error that stopped the walk, if any. The caller keeps
            ``buf[consumed:]`` and prepends it to the next read.
        """
        entries: list[tuple[str, int, int]] = []
        headers: list[int] = []  # offsets of every header read
        # Per header: len(entries) and the last member before it, to cut at a bad checksum.
        marks: list[tuple[int, str | None]] = []
        end = len(buf)
        pos = 0
        error: ShardError | None = None
        unpack = _HEADER.unpack_from
        while True:
            unit = pos
            if end - pos < _BLOCK:
                if final:
                    error = self._error(pos, "ends without the tar end-of-archive marker (truncated?)")
                break
            name_f, size_f, chk_f, typ, magic, prefix_f = unpack(buf, pos)
            if name_f[0] == 0 and buf[pos : pos + _BLOCK] == _ZERO:
                self.ended = True
                break
            if pos == 0 and self._offset == 0 and buf[:2] == b"\x1f\x8b":
                error = self._error(0, "is gzip-compressed; atdata reads plain (uncompressed) tar shards")
                break
            headers.append(pos)
            marks.append((len(entries), self.last_member))
            pax: dict[str, str] | None = None
            long_name: str | None = None
            try:
                while typ in _EXTENSIONS:
                    size = _number(size_f)
                    data_end = pos + _BLOCK + size
                    nxt = pos + _BLOCK + ((size + 511) & ~511)
                    if nxt + _BLOCK > end:
                        break
                    data = buf[pos + _BLOCK : data_end]
                    if typ == _GNU_LONGNAME:
                        long_name = _nts(data).decode("utf-8", "surrogateescape")
                    elif typ in _PAX_LOCAL:
                        # WebDataset's writer adds one per member just for a float mtime:
                        # parse records only when they can change the name or size.
                        if self._global_pax or b" path=" in data or b" size=" in data:
                            pax = {**self._global_pax, **_pax_records(data)}
                    elif typ == _PAX_GLOBAL:
                        self._global_pax.update(_pax_records(data))
                    pos = nxt
                    name_f, size_f, chk_f, typ, magic, prefix_f = unpack(buf, pos)
                    if buf[pos : pos + _BLOCK] == _ZERO:
                        raise _Bad("an extended header is followed by the end-of-archive marker")
                    headers.append(pos)
                    marks.append((len(entries), self.last_member))
                else:
                    name = self._name(name_f, prefix_f, typ, pax, long_name)
                    self.last_member = name
                    if typ in _NO_DATA or (typ == b"\0" and name.endswith("/")):
                        pos += _BLOCK
                        continue
                    if typ == _GNU_SPARSE:
                        raise _Bad(f"member {name!r} is a GNU sparse file, which shards never hold")
                    size = _number(size_f) if pax is None or "size" not in pax else int(pax["size"])
                    start = pos + _BLOCK
                    nxt = start + ((size + 511) & ~511)
                    if nxt > end:
                        if not final:
                            pos = unit
                            break
                        if start + size > end:
                            error = self._error(pos, f"member {name!r} is truncated: {size} bytes declared, "
                                                     f"{max(end - start, 0)} present")
                            break
                    if typ in _REGULAR:
                        self._group(name, start, start + size, entries)
                    pos = nxt
                    continue
                # An extension header whose member is not complete in buf yet.
                if final:
                    error = self._error(pos, "is truncated inside an extended (PAX/GNU) header")
                pos = unit
                break
            except _Bad as exc:
                error = self._error(pos, str(exc))
                break
            except ValueError as exc:  # int() of a garbled numeric field
                error = self._error(pos, f"has a corrupt tar header ({exc})")
                break
        bad = _first_bad_checksum(buf, headers)
        if bad is not None:
            entries, self.last_member = entries[: marks[bad][0]], marks[bad][1]
            pos, error = headers[bad], self._error(headers[bad], "has a corrupt tar header (checksum mismatch)")
        self._offset += pos
        return entries, pos, error

    def _name(self, name_f: bytes, prefix_f: bytes, typ: bytes, pax: dict[str, str] | None, long_name: str | None) -> str:
        if pax is not None and "path" in pax:
            return pax["path"]
        if long_name is not None:
            return long_name
        name = _nts(name_f)
        if prefix_f[0]:
            name = _nts(prefix_f) + b"/" + name
        return name.decode("utf-8", "surrogateescape")

    def _group(self, name: str, start: int, end: int, entries: list[tuple[str, int, int]]) -> None:
        """Apply WebDataset's rules for which members form which sample."""
        if name.startswith("__") and (("/" not in name and name.endswith("__")) or _WDS_META.match(name)):
            return
        slash = name.rfind("/")
        dot = name.find(".", slash + 1)
        if dot > slash + 1:
            key, suffix = name[:dot], name[dot + 1 :]
        else:
            match = _WDS_KEY.match(name)
            if match is None:
                return
            key, suffix = match.group(1), match.group(2)
        suffix = suffix.lower()
        if key != self._key:
            self._key = key
            self._suffixes = {suffix}
        elif suffix in self._suffixes:
            raise _Bad(f"sample {key!r} has two {suffix!r} members (duplicate file name {name!r})")
        else:
            self._suffixes.add(suffix)
        if suffix == "msgpack":
            entries.append((key, start, end))

    def _error(self, pos: int, what: str) -> ShardError:
        after = f"after member {self.last_member!r}" if self.last_member is not None else "at its first member"
        return ShardError(f"shard {self.url!r} {what} at byte {self._offset + pos} ({after})")


class _Bad(Exception):
    """Internal: a structural problem found mid-walk, turned into a ShardError."""


def iter_blocks(url: str, chunk: int = CHUNK) -> Iterator[Block]:
    """The samples of shard ``url``, one :class:`Block` per buffer read.

    Raises
    ------
    ShardError
        After yielding every sample before the problem: a corrupt or truncated shard,
        naming the URL, byte offset and member.
    """
    walker = ShardWalker(url)
    with _open(url) as stream:
        carry = b""
        final = False
        want = chunk
        while not final:
            data = _read_full(stream, want)
            final = len(data) < want
            buf = carry + data if carry else data
            entries, used, error = walker.walk(buf, final)
            if entries:
                yield Block(url, buf, entries)
            if error is not None:
                raise error
            if walker.ended:
                return
            carry = buf[used:]
            # A member larger than what we hold: read enough for it in one go.
            want = max(chunk, len(carry))


def _open(url: str) -> BinaryIO:
    path = local_path(url)
    if path is not None:
        try:
            return open(path, "rb", buffering=0)
        except FileNotFoundError:
            pass  # open_url raises the documented error
    return open_url(url)


def _read_full(stream: BinaryIO, n: int) -> bytes:
    """``n`` bytes, fewer only at the end: network streams may return short reads."""
    data = stream.read(n)
    if len(data) == n or not data:
        return data
    parts = [data]
    got = len(data)
    while got < n:
        more = stream.read(n - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _nts(field_bytes: bytes) -> bytes:
    nul = field_bytes.find(b"\0")
    return field_bytes if nul == -1 else field_bytes[:nul]


def _number(field_bytes: bytes) -> int:
    """A numeric header field: octal text, or GNU base-256 for large values."""
    if field_bytes[0] in (0o200, 0o377):
        n = int.from_bytes(field_bytes[1:], "big")
        return n - (256 ** (len(field_bytes) - 1)) if field_bytes[0] == 0o377 else n
    text = _nts(field_bytes).strip()
    return int(text, 8) if text else 0


def _pax_records(data: bytes) -> dict[str, str]:
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data) and data[pos] != 0:
        space = data.find(b" ", pos)
        if space == -1:
            raise _Bad("has a malformed PAX header record")
        length = int(data[pos:space])
        if length <= 0 or pos + length > len(data):
            raise _Bad("has a malformed PAX header record length")
        key, eq, value = data[space + 1 : pos + length - 1].partition(b"=")
        if not eq:
            raise _Bad("has a malformed PAX header record (no '=')")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records


def _first_bad_checksum(buf: bytes, headers: list[int]) -> int | None:
    """Index of the first header in ``headers`` whose checksum is wrong, or None.

    Sums all headers at once with NumPy; only a header whose stored checksum is not in
    the common ``%06o`` form, or does not match, is rechecked in Python the way
    :mod:`tarfile` checks it (unsigned or signed byte sums).
    """
    if not headers:
        return None
    rows = np.frombuffer(buf, np.uint8, count=len(buf) // _BLOCK * _BLOCK).reshape(-1, _BLOCK)
    hdr = rows[np.asarray(headers) // _BLOCK]
    sums = hdr.sum(axis=1, dtype=np.int64) - hdr[:, 148:156].sum(axis=1, dtype=np.int64) + 8 * 32
    stored = (hdr[:, 148:154].astype(np.int64) - 48) @ _OCTAL_WEIGHTS
    suspect = np.flatnonzero(stored != sums)
    for i in suspect.tolist():
        if not _checksum_ok(buf[headers[i] : headers[i] + _BLOCK]):
            return i
    return None


def _checksum_ok(header: bytes) -> bool:
    try:
        stored = _number(header[148:156])
    except ValueError:
        return False
    blanked = header[:148] + b"        " + header[156:]
    unsigned = sum(blanked)
    signed = unsigned - 2 * sum(b for b in blanked if b > 127)
    return stored in (unsigned, signed)
