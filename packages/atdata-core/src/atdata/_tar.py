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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

from .errors import ShardError
from .openers import local_path, open_url

__all__ = ["CHUNK", "Block", "ShardWalker", "iter_blocks"]

#: Bytes read per call; a sample larger than this is read in as many calls as it needs.
CHUNK = 8 << 20

_BLOCK = 512
# name, size, typeflag and the first byte of the ustar prefix; the rest is never needed
# in Python (checksums are verified with NumPy), so it is never turned into objects.
_HEADER = struct.Struct("100s24x12s20xc188xB166x")
_PREFIX = slice(345, 500)
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
_GNU_TYPES = (b"L", b"K", b"S")
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
    keys
        Each sample's key, in shard order.
    views
        Each sample's msgpack member: a zero-copy slice of the buffer read.
    """

    url: str
    keys: list[str]
    views: list[memoryview]


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
    _suffixes: str | set[str] = ""  # extensions of the current sample (a str while only one)
    _global_pax: dict[str, str] = field(default_factory=dict)
    _offset: int = 0  # shard offset of buf[0], for error messages

    def walk(
        self, buf: bytes | bytearray, final: bool, *, verify: bool = True
    ) -> tuple[list[str], list[memoryview], int, ShardError | None]:
        """Parse every complete member of ``buf``, which starts at a header.

        Parameters
        ----------
        buf
            Shard bytes from the end of the last complete member onwards.
        final
            True when the shard has no bytes after ``buf``.
        verify
            Check header checksums (only turned off to re-walk up to a bad header).

        Returns
        -------
        keys, views, consumed, error
            The samples found (keys, and views of their msgpack members in ``buf``), how
            many bytes of ``buf`` they and the members between them use, and the error
            that stopped the walk, if any. The caller keeps ``buf[consumed:]`` and
            prepends it to the next read.
        """
        keys: list[str] = []
        views: list[memoryview] = []
        data = memoryview(buf)
        # Offsets of the headers whose fields were used (a PAX header that is stepped over
        # unread is not among them: corrupting it cannot change what is read).
        headers: list[int] = []
        end = len(buf)
        pos = 0
        error: ShardError | None = None
        unpack = _HEADER.unpack_from
        add_key, add_view, add_header = keys.append, views.append, headers.append
        suffixes_now = self._suffixes if isinstance(self._suffixes, str) else set(self._suffixes)
        before = (self._key, suffixes_now, self.last_member, dict(self._global_pax))
        key_now, suffixes, last = self._key, self._suffixes, self.last_member
        if self._offset == 0 and buf[:2] == b"\x1f\x8b":
            error = self._error(0, "is gzip-compressed; atdata reads plain (uncompressed) tar shards")
            end = 0
            final = False
        # The loop is one function on purpose: a call per member costs as much as the rest.
        while True:
            unit = pos
            if end - pos < _BLOCK:
                if final:
                    error = self._error(pos, "ends without the tar end-of-archive marker (truncated?)")
                break
            name_f, size_f, typ, prefixed = unpack(buf, pos)
            if not name_f[0] and buf[pos : pos + _BLOCK] == _ZERO:
                self.ended = True
                break
            try:
                name = pax_size = None
                if typ == b"x" and not self._global_pax:
                    # WebDataset's writer puts a PAX header before every member, only for a
                    # float mtime: step over such a header without parsing it.
                    try:
                        size = int(size_f[:11], 8)
                    except ValueError:
                        size = _number(size_f)
                    start = pos + _BLOCK
                    nxt = start + ((size + 511) & ~511)
                    if (
                        nxt + _BLOCK <= end
                        and buf.find(b" path=", start, start + size) < 0
                        and buf.find(b" size=", start, start + size) < 0
                    ):
                        name_f, size_f, typ, prefixed = unpack(buf, nxt)
                        if typ not in _EXTENSIONS and (name_f[0] or buf[nxt : nxt + _BLOCK] != _ZERO):
                            pos = nxt
                        else:
                            typ = b"x"
                    else:
                        typ = b"x"
                if typ in _EXTENSIONS:
                    found = self._extensions(buf, pos, end, add_header)
                    if found is None:  # the member is not complete in buf yet
                        if final:
                            error = self._error(pos, "is truncated inside an extended (PAX/GNU) header")
                        pos = unit
                        break
                    pos, name, typ, size_f, pax_size = found
                add_header(pos)
                if name is None:
                    nul = name_f.find(0)
                    if nul >= 0:
                        name_f = name_f[:nul]
                    if prefixed and typ not in _GNU_TYPES:
                        name_f = _prefix(buf, pos) + name_f
                    name = name_f.decode("utf-8", "surrogateescape")
                if typ != b"0":
                    if typ in _NO_DATA or (typ == b"\0" and name.endswith("/")):
                        last = name
                        pos += _BLOCK
                        continue
                    if typ == _GNU_SPARSE:
                        raise _Bad(f"member {name!r} is a GNU sparse file, which shards never hold")
                if pax_size is not None:
                    size = pax_size
                else:
                    try:
                        size = int(size_f[:11], 8)
                    except ValueError:  # other padding, or GNU base-256
                        size = _number(size_f)
                start = pos + _BLOCK
                nxt = start + ((size + 511) & ~511)
                if nxt > end:
                    if not final:
                        pos = unit
                        break
                    if start + size > end:
                        error = self._error(
                            pos, f"member {name!r} is truncated: {size} bytes declared, {max(end - start, 0)} present"
                        )
                        break
                pos, last = nxt, name
                if typ != b"0" and typ not in _REGULAR:
                    continue
                # WebDataset's grouping: skip __meta__ names; key = up to the first dot of
                # the last path component; consecutive members with one key are one sample.
                if name.startswith("__") and (("/" not in name and name.endswith("__")) or _WDS_META.match(name)):
                    continue
                slash = name.rfind("/")
                dot = name.find(".", slash + 1)
                if dot > slash + 1:
                    key, suffix = name[:dot], name[dot + 1 :]
                else:
                    match = _WDS_KEY.match(name)
                    if match is None:
                        continue
                    key, suffix = match.group(1), match.group(2)
                if suffix != "msgpack":
                    suffix = suffix.lower()
                if key != key_now:
                    key_now, suffixes = key, suffix  # one member so far: no set needed
                elif suffix == suffixes or (suffixes.__class__ is set and suffix in suffixes):
                    raise _Bad(f"sample {key!r} has two {suffix!r} members (duplicate file name {name!r})")
                else:
                    suffixes = {suffix, suffixes} if suffixes.__class__ is str else {suffix, *suffixes}
                if suffix == "msgpack":
                    add_key(key)
                    add_view(data[start : start + size])
            except _Bad as exc:
                error = self._error(pos, str(exc))
                break
            except ValueError as exc:  # int() of a garbled numeric field
                error = self._error(pos, f"has a corrupt tar header ({exc})")
                break
        self._key, self._suffixes, self.last_member = key_now, suffixes, last
        bad = _first_bad_checksum(buf, headers) if verify else None
        if bad is not None:
            # Rare: walk again up to the bad header for the samples and member before it.
            cut = headers[bad]
            self._key, self._suffixes, self.last_member, self._global_pax = before
            offset = self._offset
            keys, views, _, _ = self.walk(buf[:cut], False, verify=False)
            self._offset = offset
            pos, error = cut, self._error(cut, "has a corrupt tar header (checksum mismatch)")
        self._offset += pos
        return keys, views, pos, error

    def _extensions(
        self, buf: bytes | bytearray, pos: int, end: int, add_header: Callable[[int], None]
    ) -> tuple[int, str, bytes, bytes, int | None] | None:
        """Read PAX and GNU extension headers up to the member they describe.

        Returns the member's header offset, name, type, size field and PAX size, or None
        when the member's header is not in ``buf`` yet.
        """
        pax: dict[str, str] | None = None
        long_name: str | None = None
        _, size_f, typ, _ = _HEADER.unpack_from(buf, pos)
        while True:
            add_header(pos)
            size = _number(size_f)
            nxt = pos + _BLOCK + ((size + 511) & ~511)
            if nxt + _BLOCK > end:
                return None
            data = bytes(buf[pos + _BLOCK : pos + _BLOCK + size])
            if typ == _GNU_LONGNAME:
                long_name = _nts(data).decode("utf-8", "surrogateescape")
            elif typ in _PAX_LOCAL:
                pax = {**self._global_pax, **_pax_records(data)}
            elif typ == _PAX_GLOBAL:
                self._global_pax.update(_pax_records(data))
            pos = nxt
            name_f, size_f, typ, prefixed = _HEADER.unpack_from(buf, pos)
            if not name_f[0] and buf[pos : pos + _BLOCK] == _ZERO:
                raise _Bad("an extended header is followed by the end-of-archive marker")
            if typ not in _EXTENSIONS:
                break
        if pax is not None and "path" in pax:
            name = pax["path"]
        elif long_name is not None:
            name = long_name
        else:
            name_b = _nts(name_f)
            if prefixed and typ not in _GNU_TYPES:
                name_b = _prefix(buf, pos) + name_b
            name = name_b.decode("utf-8", "surrogateescape")
        pax_size = int(pax["size"]) if pax is not None and "size" in pax else None
        return pos, name, typ, size_f, pax_size

    def _error(self, pos: int, what: str) -> ShardError:
        after = f"after member {self.last_member!r}" if self.last_member is not None else "at its first member"
        return ShardError(f"shard {self.url!r} {what} at byte {self._offset + pos} ({after})")


class _Bad(Exception):
    """Internal: a structural problem found mid-walk, turned into a ShardError."""


def iter_blocks(url: str, chunk: int = CHUNK, stream: BinaryIO | None = None) -> Iterator[Block]:
    """The samples of shard ``url``, one :class:`Block` per buffer read.

    Each read goes straight into a new buffer that starts with the unfinished member
    carried over from the last one, so shard bytes are copied once, by the kernel.
    ``stream`` (e.g. a prefetching one, see :mod:`atdata._prefetch`) replaces opening
    ``url``; it is closed at the end.

    Raises
    ------
    ShardError
        After yielding every sample before the problem: a corrupt or truncated shard,
        naming the URL, byte offset and member.
    """
    walker = ShardWalker(url)
    with stream if stream is not None else _open(url) as stream:
        carry = b""
        final = False
        while not final:
            # A member larger than what we hold: read enough for it in one go.
            want = max(chunk, len(carry))
            buf = bytearray(len(carry) + want)
            buf[: len(carry)] = carry
            got = _read_into(stream, memoryview(buf)[len(carry) :])
            final = got < want
            if final:
                del buf[len(carry) + got :]
            keys, views, used, error = walker.walk(buf, final)
            if keys:
                yield Block(url, keys, views)
            if error is not None:
                raise error
            if walker.ended:
                return
            carry = bytes(memoryview(buf)[used:])


def _open(url: str) -> BinaryIO:
    path = local_path(url)
    if path is not None:
        try:
            return open(path, "rb", buffering=0)
        except FileNotFoundError:
            pass  # open_url raises the documented error
    return open_url(url)


def _read_into(stream: BinaryIO, view: memoryview) -> int:
    """Fill ``view``; fewer bytes only at the end (network streams return short reads)."""
    readinto = getattr(stream, "readinto", None)
    got = 0
    while got < len(view):
        if readinto is not None:
            n = readinto(view[got:])
        else:
            data = stream.read(len(view) - got)
            n = len(data)
            view[got : got + n] = data
        if not n:
            break
        got += n
    return got


def _prefix(buf: bytes | bytearray, pos: int) -> bytes:
    """The ustar prefix of the header at ``pos`` (a long name's directory part) and "/"."""
    header = bytes(buf[pos : pos + _BLOCK])
    return _nts(header[_PREFIX]) + b"/"


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
    # Sums wrap at 2**16 (uint16 sums run fastest): a corrupted byte shifts a sum by 1..255,
    # which no wrap hides, and the exact check below decides every mismatch anyway.
    sums = hdr.sum(axis=1, dtype=np.uint16).astype(np.int64) - hdr[:, 148:156].sum(axis=1, dtype=np.int64) + 8 * 32
    stored = (hdr[:, 148:154].astype(np.int64) - 48) @ _OCTAL_WEIGHTS
    suspect = np.flatnonzero((stored - sums) & 0xFFFF)
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
