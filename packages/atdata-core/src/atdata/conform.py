"""Do stored samples match a sample type? Field names and wire types, checked before indexing.

An insert copies samples as stored, without decoding them, so nothing on the copy path
would notice shards of another sample type (``TrainingSample`` data inserted as
``ImageSample``) or members that are not msgpack at all: every reader would fail later
instead. :class:`SampleCheck` is the check an insert runs on every sample it copies.

A sample *matches* when it is a msgpack map whose keys are the type's field names (an
optional field may be absent: it reads as None) and whose values have wire types the
type's decoder takes (a float field also takes an int; an NDArray field takes ``.npy``
bytes of an admitted dtype). Values are not otherwise judged.

The check is cheap where reading is: a :class:`~atdata._read.layout.Layout` pins the
map header, every key and every type byte (and the ``.npy`` headers) of samples of one
length, so rows that have its fixed bytes (and UTF-8 strings) match. A chunk whose
samples are all of one size at one stride (``rows``) is checked whole in a few byte
comparisons; other chunks are grouped by sample length and each group matched with
NumPy against the layouts of its length (a few per length, learnt per shard from rows
no layout matched yet). Only samples no layout matches are unpacked and decoded one by
one, which says exactly what is wrong.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import msgpack
import numpy as np

from ._read.layout import Layout, layout_of
from ._sample.fields import FieldSpec
from .errors import SampleDecodeError, SchemaMismatch
from .sample import DictSample, decoder_of, fields_of

__all__ = ["SampleCheck"]

_NPY_MAGIC = b"\x93NUMPY"
#: Samples of one length fewer than this are unpacked one by one (a matrix costs more).
_MIN_GROUP = 4
#: Layouts learnt per sample length per shard: the same length can hold other layouts
#: (a 1-byte int and a 2-byte string, or a 2-byte int and a 1-byte string).
_MAX_LAYOUTS = 4


class SampleCheck:
    """Checks samples (raw msgpack bytes) against ``sample_type``; raises :class:`SchemaMismatch`.

    Call :meth:`new_shard` before each shard's samples (layouts are learnt per shard),
    then :meth:`chunk` for each chunk's samples, or :meth:`sample` for any single one.
    """

    def __init__(self, sample_type: type) -> None:
        self.sample_type = sample_type
        self._any_fields = isinstance(sample_type, type) and issubclass(sample_type, DictSample)
        self._specs = fields_of(sample_type)
        self._decode: Callable[[dict[str, Any]], Any] = decoder_of(sample_type)
        self._names = {spec.name for spec in self._specs}
        self._required = {spec.name for spec in self._specs if not spec.optional}
        self._strings = [spec.name for spec in self._specs if spec.kind == "str"]
        self._layouts: dict[int, list[Layout]] = {}  # by sample length

    @property
    def expected(self) -> list[str]:
        """The type's fields as ``name: wire type``, as error messages show them."""
        return [f"{spec.name}: {_spec_text(spec)}" for spec in self._specs]

    def new_shard(self) -> None:
        """Forget the layouts learnt so far: the next shard learns its own."""
        self._layouts.clear()

    def chunk(self, url: str, keys: Sequence[str], views: Sequence[Any], rows: np.ndarray | None) -> None:
        """Check one chunk's samples: by layout where one fits, the rest one by one.

        ``rows`` (the samples as one fixed-size byte matrix, when the reader has it) is
        checked whole first: the common case, a few byte comparisons. Otherwise the
        samples are grouped by length, and each group's rows are matched against the
        layouts of that length (learnt from rows no layout matched yet, a few per length
        per shard); only rows no layout matches are unpacked, in shard order, so the
        first bad member is the one named.
        """
        if self._any_fields:
            unmatched: Sequence[int] = range(len(views))  # a DictSample has no layout: each must be a map
        elif rows is not None and len(rows) and self._fits_whole(rows):
            return
        else:
            unmatched = self._unmatched(views, rows)
        for i in unmatched:
            self.sample(url, keys[i], views[i])

    def _fits_whole(self, rows: np.ndarray) -> bool:
        layouts = self._layouts_of(rows)
        if not layouts:
            layouts.extend(_learnt(rows[0], self._specs))
        return bool(layouts) and layouts[0].fits(rows) and self._utf8(layouts[0], rows)

    def _unmatched(self, views: Sequence[Any], rows: np.ndarray | None) -> list[int]:
        """Indices (ascending) of the samples no layout matches."""
        if rows is not None:
            return self._unmatched_rows(rows).tolist()
        views = list(views)  # made once (a reader's views are lazy), indexed below
        lengths = np.fromiter(map(len, views), dtype=np.int64, count=len(views))
        unmatched: list[np.ndarray] = []
        for length in np.unique(lengths).tolist():
            members = np.flatnonzero(lengths == length)
            if len(members) < _MIN_GROUP:
                unmatched.append(members)
                continue
            picked = operator.itemgetter(*members.tolist())(views)
            unmatched.append(members[self._unmatched_rows(_matrix(picked, length))])
        return np.sort(np.concatenate(unmatched)).tolist() if unmatched else []

    def _unmatched_rows(self, rows: np.ndarray) -> np.ndarray:
        """Indices of the rows (samples of one length) that no layout of that length matches."""
        layouts = self._layouts_of(rows)
        left = np.arange(len(rows))
        for layout in layouts:
            left = left[~self._matching(layout, rows[left])]
            if not len(left):
                return left
        while len(left) and len(layouts) < _MAX_LAYOUTS:
            learnt = _learnt(rows[left[0]], self._specs)
            if not learnt:
                break  # a row without a layout (a bad sample, or a value a layout does not take)
            layouts.extend(learnt)
            left = left[~self._matching(learnt[0], rows[left])]
        return left

    def _layouts_of(self, rows: np.ndarray) -> list[Layout]:
        return self._layouts.setdefault(rows.shape[1], [])

    def _matching(self, layout: Layout, rows: np.ndarray) -> np.ndarray:
        """Which rows have ``layout``'s fixed bytes and value types (and UTF-8 strings)."""
        ok = np.ones(len(rows), dtype=bool)
        for start, end, expected in layout.fixed:
            ok &= (rows[:, start:end] == np.frombuffer(expected, np.uint8)).all(axis=1)
        for offset, same_type in layout.tiny:
            ok &= np.isin(rows[:, offset], np.frombuffer(same_type, np.uint8))
        if self._strings and ok.any() and not self._utf8(layout, rows[ok]):
            ok[:] = False  # some string is not UTF-8: these rows are checked one by one
        return ok

    def _utf8(self, layout: Layout, rows: np.ndarray) -> bool:
        """Whether every string value of ``rows`` is UTF-8 (ASCII columns at a glance)."""
        if not any((rows[:, start:end] >= 0x80).any() for start, end in layout.strings):
            return True
        return layout.cut(rows, self._strings) is not None

    def sample(self, url: str, key: str, raw: bytes | memoryview) -> None:
        """Check one sample (``key`` names its member in shard ``url``)."""
        member = f"{key}.msgpack"
        try:
            data = msgpack.unpackb(raw)
        except Exception as exc:  # msgpack raises ValueError subclasses, TypeError, StackError...
            raise self._mismatch(url, member, None, f"its {len(raw)} bytes are not msgpack ({exc})") from None
        if not isinstance(data, dict):
            raise self._mismatch(url, member, None, f"it holds a msgpack {type(data).__name__}, not a map of fields")
        if self._any_fields:
            return
        found = [f"{name}: {_wire_type(value)}" for name, value in data.items()]
        names = set(map(str, data))
        missing, extra = sorted(self._required - names), sorted(names - self._names)
        if missing or extra:
            what = "; ".join(
                part
                for part in (missing and f"missing field(s) {missing}", extra and f"field(s) {extra} not in the type")
                if part
            )
            raise self._mismatch(url, member, found, what)
        try:
            self._decode(data)
        except SampleDecodeError as exc:
            raise self._mismatch(url, member, found, f"a value has the wrong wire type: {exc}") from None

    def _mismatch(self, url: str, member: str, found: list[str] | None, what: str) -> SchemaMismatch:
        owner = self.sample_type.__qualname__
        shown = "not a msgpack map" if found is None else str(found)
        return SchemaMismatch(
            f"shard {url!r}, member {member!r} does not match {owner}: {what}. {owner} has fields "
            f"{self.expected}; the member has {shown}. Insert it with the sample type (or schema_ref) it "
            "was written with, or rewrite the shards with atdata.write_samples",
            url=url,
            member=member,
            expected=self.expected,
            found=found,
        )


def _learnt(row: np.ndarray, specs: Sequence[FieldSpec]) -> list[Layout]:
    """The layout of one row (one sample), as a list of none or one."""
    layout = layout_of(row.tobytes(), specs)
    return [] if layout is None else [layout]


def _matrix(views: Sequence[Any], length: int) -> np.ndarray:
    """Samples of one ``length`` as one ``(n, length)`` byte matrix (one copy)."""
    return np.frombuffer(b"".join(views), np.uint8).reshape(len(views), length)


def _spec_text(spec: FieldSpec) -> str:
    if spec.kind == "ndarray":
        text = f"ndarray[{spec.dtype}]" if spec.dtype else "ndarray"
    elif spec.kind == "list" and spec.items is not None:
        text = f"list[{spec.items.kind}]"
    else:
        text = spec.kind
    return f"{text} | None" if spec.optional else text


def _wire_type(value: Any) -> str:
    """What a value unpacked from msgpack is on the wire (``.npy`` bytes shown as ndarray)."""
    if value is None:
        return "nil"
    if isinstance(value, bytes):
        return "ndarray (.npy bytes)" if value.startswith(_NPY_MAGIC) else "bytes"
    if isinstance(value, dict):
        return "map"
    return type(value).__name__  # bool, int, float, str, list
