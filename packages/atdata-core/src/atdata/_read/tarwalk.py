"""Walk tar shards ourselves: the msgpack members of a shard, as WebDataset groups them.

``tarfile`` builds a ``TarInfo`` object per member and reads member data through file
objects; for shards of many small samples that costs more than decoding the samples.
Here a shard is read in large chunks (see :mod:`atdata._read.shard`), and the 512-byte
headers are unpacked with one :mod:`struct` call each (or, for WebDataset's own layout,
all at once with NumPy: :mod:`atdata._read.tarfast`). Member data is never copied: the
reader gets views into the chunk.

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
whole chunk at once with NumPy. A walk returns the samples found before an error
together with the error, so every reader path yields the same samples and then fails
at the same point.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import overload

import numpy as np

from ..errors import ShardError
from .tarfast import fast_prefix
from .tarformat import (
    EXTENSIONS,
    GNU_LONGNAME,
    GNU_SPARSE,
    GNU_TYPES,
    HEADER,
    NO_DATA,
    PAX_GLOBAL,
    PAX_LOCAL,
    PAX_OVERRIDES,
    REGULAR,
    TAR_BLOCK,
    WDS_KEY,
    WDS_META,
    ZERO_BLOCK,
    Buffer,
    TarFormatError,
    first_bad_checksum,
    nts,
    number,
    pax_records,
    prefix,
)

__all__ = ["SampleViews", "ShardWalker", "Walked"]


class SampleViews(Sequence[memoryview]):
    """Each sample's msgpack member as a view of the buffer, made only when asked for.

    A batch cut from a chunk's byte matrix (see :attr:`Walked.rows`) never needs them,
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

    @property
    def starts(self) -> list[int]:
        """Where each member's data starts in the buffer."""
        return self._starts

    @property
    def ends(self) -> list[int]:
        """Where each member's data ends in the buffer."""
        return self._ends

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


@dataclass(frozen=True, slots=True)
class Walked:
    """What one :meth:`ShardWalker.walk` found in a buffer.

    Attributes
    ----------
    keys, views
        The samples found: keys, and views of their msgpack members in the buffer.
    consumed
        How many bytes of the buffer they and the members between them use; the caller
        keeps ``buf[consumed:]`` and prepends it to the next read.
    error
        The error that stopped the walk, if any (raised after the samples before it).
    rows
        When the samples are all of one size at one stride, a ``(samples, size)`` byte
        matrix view of them (else None).
    """

    keys: list[str]
    views: Sequence[memoryview]
    consumed: int
    error: ShardError | None
    rows: np.ndarray | None


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

    def walk(self, buf: Buffer, final: bool, *, verify: bool = True) -> Walked:
        """Parse every complete member of ``buf``, which starts at a header.

        Stages: the gzip check; the vectorised fast path over the leading members in
        WebDataset's layout (:mod:`atdata._read.tarfast`); the general walk of the rest
        (:meth:`_members`); the checksums of every header read, and on a bad one a walk
        again up to it (:meth:`_rewalk`).

        Parameters
        ----------
        buf
            Shard bytes from the end of the last complete member onwards.
        final
            True when the shard has no bytes after ``buf``.
        verify
            Check header checksums (only turned off to re-walk up to a bad header).
        """
        if self._offset == 0 and buf[:2] == b"\x1f\x8b":
            gzip = self._error(0, "is gzip-compressed; atdata reads plain (uncompressed) tar shards", None)
            return Walked([], [], 0, gzip, None)
        suffixes_now = self._suffixes if isinstance(self._suffixes, str) else set(self._suffixes)
        before = (self._key, suffixes_now, self.last_member, dict(self._global_pax))
        fast = fast_prefix(buf, self._key) if not self._global_pax else None
        keys: list[str] = []
        pos = 0
        if fast is not None:
            keys, pos = fast.keys, fast.consumed
            self._key, self._suffixes, self.last_member = keys[-1], "msgpack", keys[-1] + ".msgpack"
        views: list[memoryview] = []
        headers: list[int] = []
        pos, error = self._members(buf, pos, final, keys, views, headers)
        if fast is not None and len(fast.headers):
            headers = [*fast.headers.tolist(), *headers]
        bad = first_bad_checksum(buf, headers) if verify else None
        if bad is not None:
            return self._rewalk(buf, headers[bad], before)
        self._offset += pos
        if fast is None:
            return Walked(keys, views, pos, error, None)
        rows = (
            fast.rows if fast.rows is not None and len(fast.rows) == len(keys) else None
        )  # else the general walk found more
        fast_views = SampleViews(memoryview(buf), fast.starts, fast.ends)
        return Walked(keys, fast_views if not views else [*fast_views, *views], pos, error, rows)

    def _rewalk(
        self, buf: Buffer, cut: int, before: tuple[str | None, str | set[str], str | None, dict[str, str]]
    ) -> Walked:
        """Rare: the header at ``buf[cut]`` has a bad checksum; walk again up to it, from
        the state ``before`` this walk, for the samples and member before it."""
        self._key, self._suffixes, self.last_member, self._global_pax = before
        offset = self._offset
        again = self.walk(buf[:cut], False, verify=False)
        self._offset = offset
        error = self._error(cut, "has a corrupt tar header (checksum mismatch)", self.last_member)
        self._offset += cut
        return Walked(again.keys, again.views, cut, error, again.rows)

    def _members(
        self, buf: Buffer, pos: int, final: bool, keys: list[str], views: list[memoryview], headers: list[int]
    ) -> tuple[int, ShardError | None]:
        """The general walk from ``buf[pos]``: every member, one by one, as :mod:`tarfile` reads it.

        Appends the samples found to ``keys`` and ``views`` and the offset of every header
        read to ``headers`` (a PAX header stepped over too: whether it is parsed or stepped
        over depends on where the buffer ends, and its checksum must be checked either way,
        so a corrupt shard fails at one point whatever the reads). Returns where the walk
        stopped and the error that stopped it, if any.

        The member loop is one function on purpose: a call per member costs as much as
        the rest of the loop (see the core README, "Module and function size").
        """
        data = memoryview(buf)
        end = len(buf)
        error: ShardError | None = None
        unpack = HEADER.unpack_from
        add_key, add_view, add_header = keys.append, views.append, headers.append
        key_now, suffixes, last = self._key, self._suffixes, self.last_member
        while True:
            unit, previous = pos, last
            if end - pos < TAR_BLOCK:
                if final:
                    error = self._error(pos, "ends without the tar end-of-archive marker (truncated?)", last)
                break
            name_f, size_f, typ, prefixed = unpack(buf, pos)
            if not name_f[0] and buf[pos : pos + TAR_BLOCK] == ZERO_BLOCK:
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
                        size = number(size_f)
                    start = pos + TAR_BLOCK
                    nxt = start + ((size + 511) & ~511)
                    if nxt + TAR_BLOCK <= end and not PAX_OVERRIDES.search(bytes(buf[start : start + size])):
                        name_f, size_f, typ, prefixed = unpack(buf, nxt)
                        if typ not in EXTENSIONS and (name_f[0] or buf[nxt : nxt + TAR_BLOCK] != ZERO_BLOCK):
                            add_header(pos)
                            pos = nxt
                        else:
                            typ = b"x"
                    else:
                        typ = b"x"
                if typ in EXTENSIONS:
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
                    if prefixed and typ not in GNU_TYPES:
                        name_f = prefix(buf, pos) + name_f
                    name = name_f.decode("utf-8", "surrogateescape")
                if typ != b"0":
                    if typ in NO_DATA or (typ == b"\0" and name.endswith("/")):
                        last = name
                        pos += TAR_BLOCK
                        continue
                    if typ == GNU_SPARSE:
                        raise TarFormatError(f"member {name!r} is a GNU sparse file, which shards never hold")
                if pax_size is not None:
                    size = pax_size
                else:
                    try:
                        size = int(size_f[:11], 8)
                    except ValueError:  # other padding, or GNU base-256
                        size = number(size_f)
                start = pos + TAR_BLOCK
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
                if typ != b"0" and typ not in REGULAR:
                    continue
                # WebDataset's grouping: skip __meta__ names; key = up to the first dot of
                # the last path component; consecutive members with one key are one sample.
                if name.startswith("__") and (("/" not in name and name.endswith("__")) or WDS_META.match(name)):
                    continue
                slash = name.rfind("/")
                dot = name.find(".", slash + 1)
                if dot > slash + 1:
                    key, suffix = name[:dot], name[dot + 1 :]
                else:
                    match = WDS_KEY.match(name)
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
            except TarFormatError as exc:
                error = self._error(pos, str(exc), last)
                break
            except ValueError as exc:  # int() of a garbled numeric field
                error = self._error(pos, f"has a corrupt tar header ({exc})", last)
                break
        self._key, self._suffixes, self.last_member = key_now, suffixes, last
        return pos, error

    def _extensions(
        self, buf: Buffer, pos: int, end: int, add_header: Callable[[int], None]
    ) -> tuple[int, str, bytes, bytes, int | None] | None:
        """Read PAX and GNU extension headers up to the member they describe.

        Returns the member's header offset, name, type, size field and PAX size, or None
        when the member's header is not in ``buf`` yet.
        """
        pax: dict[str, str] | None = None
        long_name: str | None = None
        _, size_f, typ, _ = HEADER.unpack_from(buf, pos)
        while True:
            add_header(pos)
            size = number(size_f)
            nxt = pos + TAR_BLOCK + ((size + 511) & ~511)
            if nxt + TAR_BLOCK > end:
                return None
            data = bytes(buf[pos + TAR_BLOCK : pos + TAR_BLOCK + size])
            if typ == GNU_LONGNAME:
                long_name = nts(data).decode("utf-8", "surrogateescape")
            elif typ in PAX_LOCAL:
                pax = {**self._global_pax, **pax_records(data)}
            elif typ == PAX_GLOBAL:
                self._global_pax.update(pax_records(data))
            pos = nxt
            name_f, size_f, typ, prefixed = HEADER.unpack_from(buf, pos)
            if not name_f[0] and buf[pos : pos + TAR_BLOCK] == ZERO_BLOCK:
                raise TarFormatError("an extended header is followed by the end-of-archive marker")
            if typ not in EXTENSIONS:
                break
        if pax is not None and "path" in pax:
            name = pax["path"]
        elif long_name is not None:
            name = long_name
        else:
            name_b = nts(name_f)
            if prefixed and typ not in GNU_TYPES:
                name_b = prefix(buf, pos) + name_b
            name = name_b.decode("utf-8", "surrogateescape")
        pax_size = int(pax["size"]) if pax is not None and "size" in pax else None
        return pos, name, typ, size_f, pax_size

    def _error(self, pos: int, what: str, last: str | None) -> ShardError:
        """The error at ``buf[pos]``, naming the member before it (``last``)."""
        after = f"after member {last!r}" if last is not None else "at its first member"
        return ShardError(f"shard {self.url!r} {what} at byte {self._offset + pos} ({after})")
