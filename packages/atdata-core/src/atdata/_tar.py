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

import io
import re
import struct
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, overload

import numpy as np

from ._prefetch import HEADROOM, PrefetchStream, read_into
from .errors import ShardError
from .openers import local_path, open_url

__all__ = ["CHUNK", "Block", "SampleViews", "ShardWalker", "iter_blocks"]

#: What the walker reads: a whole local read, or a view of a prefetched block.
Buffer = bytes | bytearray | memoryview
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
_PAX_OVERRIDES = re.compile(rb" (?:path|size)=")  # PAX records that change a member's name or size
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
    rows
        When the samples are all of one size at one stride in the buffer (fixed-shape
        samples written by WebDataset): the same bytes as one ``(samples, size)`` view,
        so they can be checked and cut column by column. Else None.
    """

    url: str
    keys: list[str]
    views: Sequence[memoryview]
    rows: np.ndarray | None = None


class SampleViews(Sequence[memoryview]):
    """Each sample's msgpack member as a view of the buffer, made only when asked for.

    A batch cut from a block's byte matrix (see :attr:`Block.rows`) never needs them,
    and making a view costs as much as the rest of the walk per sample. Slicing makes
    the views of the slice; iterating or indexing makes (and keeps) them all.
    """

    __slots__ = ("_data", "_starts", "_ends", "_made")

    def __init__(self, data: memoryview, starts: list[int], ends: list[int]) -> None:
        self._data = data
        self._starts = starts
        self._ends = ends
        self._made: list[memoryview] | None = None

    def __len__(self) -> int:
        return len(self._starts)

    @overload
    def __getitem__(self, index: int) -> memoryview: ...
    @overload
    def __getitem__(self, index: slice) -> list[memoryview]: ...
    def __getitem__(self, index: int | slice) -> memoryview | list[memoryview]:
        if isinstance(index, slice) and self._made is None:
            data = self._data
            return [data[a:b] for a, b in zip(self._starts[index], self._ends[index])]
        return self._all()[index]

    def __iter__(self) -> Iterator[memoryview]:
        return iter(self._all())

    def _all(self) -> list[memoryview]:
        if self._made is None:
            data = self._data
            self._made = [data[a:b] for a, b in zip(self._starts, self._ends)]
        return self._made


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
        self, buf: Buffer, final: bool, *, verify: bool = True
    ) -> tuple[list[str], Sequence[memoryview], int, ShardError | None, np.ndarray | None]:
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
        keys, views, consumed, error, rows
            The samples found (keys, and views of their msgpack members in ``buf``), how
            many bytes of ``buf`` they and the members between them use, the error
            that stopped the walk, if any, and when the samples are all of one size at
            one stride, a ``(samples, size)`` byte matrix view of them (else None). The
            caller keeps ``buf[consumed:]`` and prepends it to the next read.
        """
        keys: list[str] = []
        views: list[memoryview] = []
        data = memoryview(buf)
        # Offsets of the headers read, a PAX header stepped over too: whether it is parsed
        # or stepped over depends on where the buffer ends, and its checksum must be
        # checked either way, so a corrupt shard fails at one point whatever the reads.
        headers: list[int] = []
        end = len(buf)
        pos = 0
        error: ShardError | None = None
        unpack = _HEADER.unpack_from
        add_key, add_view, add_header = keys.append, views.append, headers.append
        suffixes_now = self._suffixes if isinstance(self._suffixes, str) else set(self._suffixes)
        before = (self._key, suffixes_now, self.last_member, dict(self._global_pax))
        key_now, suffixes, last = self._key, self._suffixes, self.last_member
        fast_headers = rows = fast_views = None
        if self._offset == 0 and buf[:2] == b"\x1f\x8b":
            error = self._error(0, "is gzip-compressed; atdata reads plain (uncompressed) tar shards", None)
            end = 0
            final = False
        elif not self._global_pax:
            fast = _fast_prefix(buf, key_now)
            if fast is not None:
                pos, fast_headers, fast_keys, starts, ends, rows = fast
                keys += fast_keys
                fast_views = SampleViews(data, starts, ends)
                key_now, suffixes, last = fast_keys[-1], "msgpack", fast_keys[-1] + ".msgpack"
        # The loop is one function on purpose: a call per member costs as much as the rest.
        while True:
            unit, previous = pos, last
            if end - pos < _BLOCK:
                if final:
                    error = self._error(pos, "ends without the tar end-of-archive marker (truncated?)", last)
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
                    if nxt + _BLOCK <= end and not _PAX_OVERRIDES.search(bytes(buf[start : start + size])):
                        name_f, size_f, typ, prefixed = unpack(buf, nxt)
                        if typ not in _EXTENSIONS and (name_f[0] or buf[nxt : nxt + _BLOCK] != _ZERO):
                            add_header(pos)
                            pos = nxt
                        else:
                            typ = b"x"
                    else:
                        typ = b"x"
                if typ in _EXTENSIONS:
                    found = self._extensions(buf, pos, end, add_header)
                    if found is None:  # the member is not complete in buf yet
                        if final:
                            error = self._error(pos, "is truncated inside an extended (PAX/GNU) header", last)
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
                            pos,
                            f"member {name!r} is truncated: {size} bytes declared, {max(end - start, 0)} present",
                            last,
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
                    what = f"sample {key!r} has two {suffix!r} members (duplicate file name {name!r})"
                    error = self._error(unit, what, previous)  # where the second member starts
                    break
                else:
                    suffixes = {suffix, suffixes} if suffixes.__class__ is str else {suffix, *suffixes}
                if suffix == "msgpack":
                    add_key(key)
                    add_view(data[start : start + size])
            except _Bad as exc:
                error = self._error(pos, str(exc), last)
                break
            except ValueError as exc:  # int() of a garbled numeric field
                error = self._error(pos, f"has a corrupt tar header ({exc})", last)
                break
        self._key, self._suffixes, self.last_member = key_now, suffixes, last
        if fast_headers is not None and len(fast_headers):
            headers = [*fast_headers.tolist(), *headers]
        bad = _first_bad_checksum(buf, headers) if verify else None
        if bad is not None:
            # Rare: walk again up to the bad header for the samples and member before it.
            cut = headers[bad]
            self._key, self._suffixes, self.last_member, self._global_pax = before
            offset = self._offset
            keys, before_cut, _, _, rows = self.walk(buf[:cut], False, verify=False)
            self._offset = offset
            error = self._error(cut, "has a corrupt tar header (checksum mismatch)", self.last_member)
            self._offset += cut
            return keys, before_cut, cut, error, rows
        self._offset += pos
        if rows is not None and len(rows) != len(keys):  # the general walk found more samples
            rows = None
        if fast_views is not None:
            return keys, fast_views if not views else [*fast_views, *views], pos, error, rows
        return keys, views, pos, error, rows

    def _extensions(
        self, buf: Buffer, pos: int, end: int, add_header: Callable[[int], None]
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

    def _error(self, pos: int, what: str, last: str | None) -> ShardError:
        """The error at ``buf[pos]``, naming the member before it (``last``)."""
        after = f"after member {last!r}" if last is not None else "at its first member"
        return ShardError(f"shard {self.url!r} {what} at byte {self._offset + pos} ({after})")


class _Bad(Exception):
    """Internal: a structural problem found mid-walk, turned into a ShardError."""


def iter_blocks(url: str, chunk: int = CHUNK, stream: BinaryIO | PrefetchStream | None = None) -> Iterator[Block]:
    """The samples of shard ``url``, one :class:`Block` per buffer read.

    A local file is read with one ``read`` per block into a fresh ``bytes`` (no copy
    in Python); the unfinished member at the end of a block is read again at the start
    of the next one (a seek back, served by the page cache). Other streams (``stream``,
    e.g. a prefetching one, see :mod:`atdata._prefetch`, or what ``open_url`` returns)
    are read into buffers that start with that unfinished member. ``stream`` replaces
    opening ``url``; it is closed at the end.

    Raises
    ------
    ShardError
        After yielding every sample before the problem: a corrupt or truncated shard,
        naming the URL, byte offset and member.
    """
    walker = ShardWalker(url)
    with stream if stream is not None else _open(url) as source:
        reads: Generator[tuple[Buffer, bool], int | None, None]
        if isinstance(source, io.FileIO):
            reads = _file_reads(source, chunk)
        elif isinstance(source, PrefetchStream):
            reads = _chunk_reads(source)
        else:
            reads = _stream_reads(source, chunk)
        next(reads)
        used: int | None = None
        while True:
            buf, final = reads.send(used)
            keys, views, used, error, rows = walker.walk(buf, final)
            if keys:
                yield Block(url, keys, views, rows)
            if error is not None:
                raise error
            if walker.ended or final:
                return


def _file_reads(source: io.FileIO, chunk: int) -> Generator[tuple[bytes, bool], int | None, None]:
    """Blocks of a local file; each ``send`` says how much of the last block was used."""
    offset, want = 0, chunk
    used = yield b"", False  # priming
    while True:
        if used is not None:  # after the first block
            offset += used
            # No complete member in the block: one member is larger; read enough for it.
            want = chunk if used else want * 2
        source.seek(offset)
        buf = _read_exactly(source, want)
        used = yield buf, len(buf) < want


def _chunk_reads(source: PrefetchStream) -> Generator[tuple[memoryview | bytes, bool], int | None, None]:
    """Blocks as a prefetching thread read them, each after the unused end of the last.

    That unused end (one unfinished sample, usually) is copied into the free room the
    thread left in front of the block; only a larger one is joined with the block.
    """
    view: memoryview | bytes = b""
    buf: bytearray | None = None
    used = yield view, False  # priming
    while True:
        carry = bytes(view[used:]) if used is not None else b""
        view = b""  # our own view must not keep the buffer from reuse
        if buf is not None:
            source.recycle(buf)
        buf, got, last = source.next_block()
        start = HEADROOM - len(carry)
        if start >= 0:
            buf[start:HEADROOM] = carry
            view = memoryview(buf)[start : HEADROOM + got]
        else:
            view = carry + bytes(memoryview(buf)[HEADROOM : HEADROOM + got])
        used = yield view, last


def _stream_reads(source: BinaryIO, chunk: int) -> Generator[tuple[bytearray, bool], int | None, None]:
    """Blocks of a stream, each starting with the unused end of the last one."""
    buf = bytearray()
    used = yield buf, False  # priming
    while True:
        carry = bytes(memoryview(buf)[used:]) if used is not None else b""
        want = max(chunk, len(carry))
        buf = bytearray(len(carry) + want)
        buf[: len(carry)] = carry
        got = read_into(source, memoryview(buf)[len(carry) :])
        if got < want:
            del buf[len(carry) + got :]
        used = yield buf, got < want


def _open(url: str) -> BinaryIO:
    path = local_path(url)
    if path is not None:
        try:
            return open(path, "rb", buffering=0)
        except (FileNotFoundError, IsADirectoryError):
            pass  # open_url raises the documented error
    return open_url(url)


def _read_exactly(source: io.FileIO, n: int) -> bytes:
    """``n`` bytes of a file, fewer only at its end."""
    data = source.read(n) or b""
    while len(data) < n:
        more = source.read(n - len(data))
        if not more:
            break
        data += more
    return data


def _prefix(buf: Buffer, pos: int) -> bytes:
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


def _first_bad_checksum(buf: Buffer, headers: list[int]) -> int | None:
    """Index of the first header in ``headers`` whose checksum is wrong, or None.

    Sums all headers at once with NumPy; only a header whose stored checksum is not in
    the common ``%06o`` form, or does not match, is rechecked in Python the way
    :mod:`tarfile` checks it (unsigned or signed byte sums).
    """
    if not headers:
        return None
    rows = np.frombuffer(buf, np.uint8, count=len(buf) // _BLOCK * _BLOCK).reshape(-1, _BLOCK)
    suspect = np.flatnonzero(~_checksums_ok(rows[np.asarray(headers) // _BLOCK]))
    for i in suspect.tolist():
        if not _checksum_ok(bytes(buf[headers[i] : headers[i] + _BLOCK])):
            return i
    return None


def _checksums_ok(headers: np.ndarray) -> np.ndarray:
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
        stored = _number(header[148:156])
    except ValueError:
        return False
    blanked = header[:148] + b"        " + header[156:]
    unsigned = sum(blanked)
    signed = unsigned - 2 * sum(b for b in blanked if b > 127)
    return stored in (unsigned, signed)


# --- vectorised fast path ---------------------------------------------------------------

_SIZE_WEIGHTS = 8 ** np.arange(10, -1, -1, dtype=np.int64)
_MTIME = np.frombuffer(b" mtime=", np.uint8)
_SUFFIX = np.frombuffer(b".msgpack", np.uint8)


def _fast_prefix(
    buf: Buffer, previous_key: str | None
) -> tuple[int, np.ndarray, list[str], list[int], list[int], np.ndarray | None] | None:
    """The leading run of ``buf`` in the layout WebDataset's writer produces, parsed at once.

    Handles members ``<key>.msgpack`` (regular, one dot, ASCII name, no ustar prefix),
    each optionally preceded by a PAX header holding only an ``mtime`` record, and
    stops before the first member that is anything else; :meth:`ShardWalker.walk` goes
    on from there with the general parser, so the result is the same as walking every
    member one by one. Header fields are decoded with NumPy; Python at most follows
    the chain of header offsets.

    Returns
    -------
    (consumed, offsets of the headers to verify, keys, data starts, data ends, rows), or
    None if the run is empty. ``rows`` is a ``(samples, size)`` view of the members'
    data when all have one size and stride, else None. The headers of a run of one stride are verified here
    already (the run stops before a header whose checksum is wrong, which the general
    parser then reports), so none are returned for them.
    """
    nblk = len(buf) // _BLOCK
    if nblk < 2:
        return None
    a = np.frombuffer(buf, np.uint8, count=nblk * _BLOCK).reshape(nblk, _BLOCK)
    fixed = _fixed_stride(a)
    if fixed is not None:
        first, stride, sizes = fixed
        names = a[first : first + len(sizes) * stride : stride, :100]
        idx = np.arange(first, first + len(sizes) * stride, stride)
        verify = np.zeros(0, dtype=np.int64)
    else:
        found = _chained(a)
        if found is None:
            return None
        idx, sizes, verify = found
        names = a[idx, :100]
    count, keys = _msgpack_keys(names)
    if count == 0 or keys[0] == previous_key:
        return None
    idx, sizes = idx[:count], sizes[:count]
    consumed = (int(idx[-1]) + 1) * _BLOCK + ((int(sizes[-1]) + 511) & ~511)
    verify = verify[verify <= idx[-1]]
    rows = None
    if fixed is not None and sizes.min() == sizes.max():  # one byte matrix of all the samples
        data = (first + 1) * _BLOCK  # where a unit's member data starts in the unit
        rows = a[: count * stride].reshape(count, stride * _BLOCK)[:, data : data + int(sizes[0])]
    starts = (idx + 1) * _BLOCK
    return consumed, verify * _BLOCK, keys, starts.tolist(), (starts + sizes).tolist(), rows


def _fixed_stride(a: np.ndarray) -> tuple[int, int, np.ndarray] | None:
    """The leading units of one stride (samples of one padded size), checked at once.

    A unit is an optional mtime-only PAX header and a regular member. The first unit
    sets the stride; the others are reached by reshaping the buffer, not by gathering
    rows. Returns the first member's row, the stride in rows and each member's size,
    or None when the first unit is not such a unit or the units of its stride end before
    the buffer does (samples of varying size: :func:`_chained` follows them).
    """
    nblk = len(a)
    pax = a[0, 156] == 120
    member = 0
    if pax:
        size = _octal_size(a[0])
        record = a[1, :9].tobytes()
        if size is None or not 10 <= size <= 99 or record[2:] != b" mtime=" or record[:2] != str(size).encode():
            return None
        member = 1 + (size + 511) // _BLOCK
    if member >= nblk or a[member, 156] != 48:
        return None
    size = _octal_size(a[member])
    if size is None:
        return None
    stride = member + 1 + (size + 511) // _BLOCK
    units = nblk // stride
    if units == 0:
        return None
    grid = a[: units * stride].reshape(units, stride, _BLOCK)
    heads = grid[:, member]
    digits = heads[:, 124:135].astype(np.int64) - 48
    sizes = digits @ _SIZE_WEIGHTS
    ok = (
        (heads[:, 156] == 48)
        & (heads[:, 345] == 0)
        & (heads[:, 135] == 0)
        & ((digits >= 0) & (digits <= 7)).all(axis=1)
        & ((sizes + 511) // _BLOCK == stride - member - 1)
        & _checksums_ok(heads)
    )
    if pax:
        ok &= _checksums_ok(grid[:, 0])
    if pax:  # each a PAX header whose data is one record "NN mtime=...\n" of NN == size bytes
        pax_heads, body = grid[:, 0], grid[:, 1, :9].astype(np.int64)
        pax_digits = pax_heads[:, 124:135].astype(np.int64) - 48
        pax_sizes = pax_digits @ _SIZE_WEIGHTS
        ok &= (
            (pax_heads[:, 156] == 120)
            & (pax_heads[:, 135] == 0)
            & ((pax_digits >= 0) & (pax_digits <= 7)).all(axis=1)
            & (pax_sizes >= 10)
            & (pax_sizes <= 99)
            & ((body[:, 0] - 48) * 10 + (body[:, 1] - 48) == pax_sizes)
            & (body[:, 0] >= 49)
            & (body[:, 0] <= 57)
            & (body[:, 1] >= 48)
            & (body[:, 1] <= 57)
            & (body[:, 2:9] == _MTIME).all(axis=1)
        )
    run = int(np.argmin(ok)) if not ok.all() else units
    if run == 0 or (run < units and grid[run, 0, 156] in (48, 120)):
        return None  # perhaps samples of other sizes, which the chain follows
    return member, stride, sizes[:run]


def _chained(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The leading units of any sizes: fields of every row decoded at once, then the
    chain of units followed in Python. Returns each member's row and size and the rows
    of every header (PAX and member, in order), or None."""
    nblk = len(a)
    typ = a[:, 156]
    # Only blocks typed '0' or 'x' can start a unit here; decode their fields alone.
    cand = np.flatnonzero((typ == 48) | (typ == 120))
    digits = a[cand, 124:135].astype(np.int64) - 48
    cand_size = digits @ _SIZE_WEIGHTS
    sized = ((digits >= 0) & (digits <= 7)).all(axis=1) & (a[cand, 135] == 0)
    size = np.zeros(nblk, dtype=np.int64)
    size[cand] = cand_size
    nxt = np.full(nblk, nblk + 1, dtype=np.int64)
    nxt[cand] = np.where(sized, cand + 1 + (cand_size + 511) // _BLOCK, nblk + 1)
    member = (typ == 48) & (a[:, 345] == 0) & (nxt <= nblk)
    # A PAX header whose data is exactly one record "NN mtime=...\n" of NN == size bytes.
    pax = (typ == 120) & (size >= 10) & (size <= 99) & (nxt < nblk)
    p = np.flatnonzero(pax)
    body = a[p + 1, :9]
    pax[p] = (
        ((body[:, 0] - 48) * 10 + (body[:, 1] - 48) == size[p])
        & (body[:, 0] >= 49)
        & (body[:, 0] <= 57)
        & (body[:, 1] >= 48)
        & (body[:, 1] <= 57)
        & (body[:, 2:9] == _MTIME).all(axis=1)
    )
    # Each unit (optional PAX header, then the member) starting at block b: its member's
    # header block and the block after it.
    head = np.where(pax, np.minimum(nxt, nblk - 1), np.arange(nblk))
    unit_ok = (member[head] & (pax | (typ == 48))).tolist()
    head_l, next_l = head.tolist(), np.minimum(nxt, nblk)[head].tolist()
    mains: list[int] = []
    headers: list[int] = []  # the PAX and member headers of every unit, to verify
    b = 0
    while unit_ok[b]:
        mains.append(head_l[b])
        headers += (b, head_l[b]) if b != head_l[b] else (b,)
        b = next_l[b]
        if b >= nblk:
            break
    if not mains:
        return None
    idx = np.asarray(mains, dtype=np.int64)
    return idx, size[idx], np.asarray(headers, dtype=np.int64)


def _octal_size(header: np.ndarray) -> int | None:
    """The size field of a header row, if it is 11 octal digits and a NUL."""
    field = header[124:136].tobytes()
    if field[11] != 0 or not field[:11].isdigit() or b"8" in field or b"9" in field:
        return None
    return int(field[:11], 8)


def _msgpack_keys(names: np.ndarray) -> tuple[int, list[str]]:
    """How many leading rows of ``names`` (name fields) are ``<key>.msgpack`` of new samples, and their keys.

    Each name must be ASCII with one dot (the suffix's), not start with ``__`` nor have
    an empty key or last key component, and differ from the name before it. All names
    are checked at once on their joined bytes; only when one fails are they checked
    row by row, to find the first that fails.
    """
    count = len(names)
    found = np.ascontiguousarray(names).view(f"S{names.shape[1]}").ravel().tolist()  # trailing NULs cut
    joined = b"\0" + b"\0".join(found) + b"\0"
    if (
        joined.isascii()
        and joined.count(b"\0") == count + 1  # no NUL inside a name
        and joined.count(b".") == count
        and joined.count(b".msgpack\0") == count
        and b"\0." not in joined
        and b"/.msgpack\0" not in joined
        and b"\0__" not in joined
    ):
        keys = joined[1:-1].decode("ascii").replace(".msgpack\0", "\0")[:-8].split("\0")
        if len(set(keys)) == count or all(a != b for a, b in zip(keys, keys[1:])):
            return count, keys
    count = _first_bad_name(names)
    return (count, _msgpack_keys(names[:count])[1]) if count else (0, [])


def _first_bad_name(names: np.ndarray) -> int:
    """Index of the first row of ``names`` that :func:`_msgpack_keys` refuses (``len`` if none)."""
    length = np.argmin(names, axis=1)  # index of the first NUL (0 if none, which fails below)
    rows = np.arange(len(names))
    tail = length[:, None] - 8 + np.arange(8)
    ok = (
        (length > 8)
        & (np.count_nonzero(names, axis=1) == length)  # nothing after the first NUL
        & (names < 128).all(axis=1)
        & ((names == 46).sum(axis=1) == 1)  # the only dot is the suffix's
        & ((names[:, 0] != 95) | (names[:, 1] != 95))  # not __meta__
    )
    ok &= (names[rows[:, None], np.maximum(tail, 0)] == _SUFFIX).all(axis=1)
    ok &= names[rows, np.maximum(length - 9, 0)] != 47  # the key's last component is not empty
    if len(names) > 1:
        ok[1:] &= (names[1:] != names[:-1]).any(axis=1)  # each member is a new sample
    bad = np.flatnonzero(~ok)
    return int(bad[0]) if len(bad) else len(names)
