"""The vectorised fast path of the shard walker: WebDataset's own layout, parsed at once.

Shards written by WebDataset's ``TarWriter`` (and by :func:`atdata.write_samples`) are
a sequence of *units*: an optional PAX header holding only an ``mtime`` record, then a
regular member ``<key>.msgpack``. :func:`fast_prefix` finds the leading units of a
buffer with NumPy (header fields of every tar block decoded at once) and hands the rest
to the general walker (:mod:`atdata._read.tarwalk`), so the result is the same as
walking every member one by one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .tarformat import SIZE_WEIGHTS, TAR_BLOCK, Buffer, checksums_ok

__all__ = ["FastPrefix", "fast_prefix"]

_MTIME = np.frombuffer(b" mtime=", np.uint8)
_SUFFIX = np.frombuffer(b".msgpack", np.uint8)


@dataclass(frozen=True, slots=True)
class FastPrefix:
    """The leading units of a buffer, as :func:`fast_prefix` found them.

    Attributes
    ----------
    consumed
        Bytes of the buffer the units use (the general walker goes on from there).
    headers
        Offsets of the headers still to verify (those of units of one stride are
        verified already: it stops before a header whose checksum is wrong, which the
        general walker then reports).
    keys, starts, ends
        Each sample's key and where its msgpack member starts and ends in the buffer.
    rows
        A ``(samples, size)`` view of the members' data when all have one size and
        stride, else None.
    """

    consumed: int
    headers: np.ndarray
    keys: list[str]
    starts: list[int]
    ends: list[int]
    rows: np.ndarray | None


def fast_prefix(buf: Buffer, previous_key: str | None) -> FastPrefix | None:
    """The leading units of ``buf`` in the layout WebDataset's writer produces, parsed at once.

    Handles members ``<key>.msgpack`` (regular, one dot, ASCII name, no ustar prefix),
    each optionally preceded by a PAX header holding only an ``mtime`` record, and
    stops before the first member that is anything else; :meth:`ShardWalker.walk` goes
    on from there with the general parser, so the result is the same as walking every
    member one by one. Header fields are decoded with NumPy; Python at most follows
    the chain of header offsets. None when there is no such unit (or its sample
    continues ``previous_key``'s).
    """
    nblk = len(buf) // TAR_BLOCK
    if nblk < 2:
        return None
    a = np.frombuffer(buf, np.uint8, count=nblk * TAR_BLOCK).reshape(nblk, TAR_BLOCK)
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
    consumed = (int(idx[-1]) + 1) * TAR_BLOCK + ((int(sizes[-1]) + 511) & ~511)
    verify = verify[verify <= idx[-1]]
    rows = None
    if fixed is not None and sizes.min() == sizes.max():  # one byte matrix of all the samples
        data = (first + 1) * TAR_BLOCK  # where a unit's member data starts in the unit
        rows = a[: count * stride].reshape(count, stride * TAR_BLOCK)[:, data : data + int(sizes[0])]
    starts = (idx + 1) * TAR_BLOCK
    return FastPrefix(consumed, verify * TAR_BLOCK, keys, starts.tolist(), (starts + sizes).tolist(), rows)


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
        member = 1 + (size + 511) // TAR_BLOCK
    if member >= nblk or a[member, 156] != 48:
        return None
    size = _octal_size(a[member])
    if size is None:
        return None
    stride = member + 1 + (size + 511) // TAR_BLOCK
    units = nblk // stride
    if units == 0:
        return None
    grid = a[: units * stride].reshape(units, stride, TAR_BLOCK)
    heads = grid[:, member]
    digits = heads[:, 124:135].astype(np.int64) - 48
    sizes = digits @ SIZE_WEIGHTS
    ok = (
        (heads[:, 156] == 48)
        & (heads[:, 345] == 0)
        & (heads[:, 135] == 0)
        & ((digits >= 0) & (digits <= 7)).all(axis=1)
        & ((sizes + 511) // TAR_BLOCK == stride - member - 1)
        & checksums_ok(heads)
    )
    if pax:
        ok &= _mtime_pax_ok(grid)
    good = int(np.argmin(ok)) if not ok.all() else units  # leading units that pass
    if good == 0 or (good < units and grid[good, 0, 156] in (48, 120)):
        return None  # perhaps samples of other sizes, which the chain follows
    return member, stride, sizes[:good]


def _mtime_pax_ok(grid: np.ndarray) -> np.ndarray:
    """Per unit of ``grid`` (units x stride x 512): its first row is a PAX header (checksum
    right) whose data is one record ``"NN mtime=...\\n"`` of NN == its size bytes."""
    pax_heads, body = grid[:, 0], grid[:, 1, :9].astype(np.int64)
    pax_digits = pax_heads[:, 124:135].astype(np.int64) - 48
    pax_sizes = pax_digits @ SIZE_WEIGHTS
    ok: np.ndarray = (
        checksums_ok(pax_heads)
        & (pax_heads[:, 156] == 120)
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
    return ok


def _chained(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The leading units of any sizes: fields of every row decoded at once, then the
    chain of units followed in Python. Returns each member's row and size and the rows
    of every header (PAX and member, in order), or None."""
    nblk = len(a)
    typ = a[:, 156]
    # Only blocks typed '0' or 'x' can start a unit here; decode their fields alone.
    cand = np.flatnonzero((typ == 48) | (typ == 120))
    digits = a[cand, 124:135].astype(np.int64) - 48
    cand_size = digits @ SIZE_WEIGHTS
    sized = ((digits >= 0) & (digits <= 7)).all(axis=1) & (a[cand, 135] == 0)
    size = np.zeros(nblk, dtype=np.int64)
    size[cand] = cand_size
    nxt = np.full(nblk, nblk + 1, dtype=np.int64)
    nxt[cand] = np.where(sized, cand + 1 + (cand_size + 511) // TAR_BLOCK, nblk + 1)
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
