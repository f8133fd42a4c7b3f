"""Do stored samples match a sample type? Field names and wire types, checked before indexing.

An insert copies samples as stored, without decoding them, so nothing on the copy path
would notice shards of another sample type (``TrainingSample`` data inserted as
``ImageSample``) or members that are not msgpack at all: every reader would fail later
instead. :class:`SampleCheck` is the check an insert runs on every sample it copies.

A sample *matches* when it is a msgpack map whose keys are the type's field names (an
optional field may be absent: it reads as None) and whose values have wire types the
type's decoder takes (a float field also takes an int; an NDArray field takes ``.npy``
bytes of an admitted dtype). Values are not otherwise judged.

The check is cheap where reading is: a chunk whose samples are all of one size at one
stride (``rows``) is checked against a :class:`~atdata._read.layout.Layout`, learnt once
per sample length per shard, in a few byte comparisons for the whole chunk: a layout
pins the map header, every key and every type byte (and the ``.npy`` headers), so rows
that fit it match. Any other sample (or a chunk the layout does not fit) is unpacked and
decoded on its own, which says exactly what is wrong.
"""

from __future__ import annotations

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


class SampleCheck:
    """Checks samples (raw msgpack bytes) against ``sample_type``; raises :class:`SchemaMismatch`.

    Call :meth:`new_shard` before each shard's samples (layouts are learnt per shard),
    then :meth:`rows` for a chunk's fixed-size byte matrix and :meth:`sample` for any
    single sample.
    """

    def __init__(self, sample_type: type) -> None:
        self.sample_type = sample_type
        self._any_fields = isinstance(sample_type, type) and issubclass(sample_type, DictSample)
        self._specs = fields_of(sample_type)
        self._decode: Callable[[dict[str, Any]], Any] = decoder_of(sample_type)
        self._names = {spec.name for spec in self._specs}
        self._required = {spec.name for spec in self._specs if not spec.optional}
        self._strings = [spec.name for spec in self._specs if spec.kind == "str"]
        self._layouts: dict[int, Layout | None] = {}

    @property
    def expected(self) -> list[str]:
        """The type's fields as ``name: wire type``, as error messages show them."""
        return [f"{spec.name}: {_spec_text(spec)}" for spec in self._specs]

    def new_shard(self) -> None:
        """Forget the layouts learnt so far: the next shard learns its own."""
        self._layouts.clear()

    def chunk(self, url: str, keys: Sequence[str], views: Sequence[Any], rows: np.ndarray | None) -> None:
        """Check one chunk's samples: by layout when ``rows`` is given and fits, else one by one."""
        if rows is not None and len(rows) and self._fits(rows):
            return
        for key, view in zip(keys, views):
            self.sample(url, key, view)

    def _fits(self, rows: np.ndarray) -> bool:
        if self._any_fields:
            return False  # a DictSample has no layout; each sample is checked to be a map
        length = rows.shape[1]
        if length not in self._layouts:
            self._layouts[length] = layout_of(rows[0].tobytes(), self._specs)
        layout = self._layouts[length]
        if layout is None or not layout.fits(rows):
            return False
        return not self._strings or layout.cut(rows, self._strings) is not None  # str values are UTF-8

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
