"""Raw msgpack samples -> typed samples, or straight into :class:`SampleBatch` columns.

A batch whose samples share one byte layout (fixed-shape arrays, fixed-width scalars:
the common case) is cut into columns with NumPy without unpacking any sample
(:mod:`atdata._read.layout`). Otherwise:

The per-sample path is one ``msgpack.unpackb`` and the sample class's compiled decoder
(:func:`atdata.sample.decoder_of`). The batch path skips sample objects altogether: a
loop generated per sample class (like the codec in :mod:`atdata.sample`) unpacks each
sample once, appends scalar values to lists and collects each NDArray field's ``.npy``
bytes, checking that they start with the same header as the batch's first sample (so
the header is parsed once per batch, via the cache in :mod:`atdata.npy`). The payloads
are then copied into one ``(batch, *shape)`` array in a single NumPy operation.

The fast loop only accepts values the per-sample decoder would accept unchanged. Any
other batch (a missing or ``None`` field, a value needing conversion, arrays of
differing shapes, a corrupt sample) is decoded again sample by sample, so the result
and every error are exactly those of the per-sample path. Errors name the sample key
and the shard.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

from .. import npy
from .._sample.fields import PRIMITIVE_KINDS, FieldSpec
from ..batch import SampleBatch
from ..errors import SampleDecodeError
from ..sample import decoder_of, fields_of, unpack
from .layout import Layout, layout_of

__all__ = ["Decoder", "RunBatches"]

Buffer = bytes | memoryview
_MISSING: Any = object()
# Array payloads of at least this many bytes are copied into the batch one by one.
_BIG = 4096


class Decoder:
    """Decodes raw samples of one sample type, one at a time or a batch at a time.

    Parameters
    ----------
    sample_type
        A packable sample class, or ``DictSample``.
    """

    def __init__(self, sample_type: type) -> None:
        self.sample_type = sample_type
        self.specs = fields_of(sample_type)
        #: The compiled ``from_data`` of the sample type: ``decode(msgpack.unpackb(raw))``.
        self.decode: Callable[[dict[str, Any]], Any] = decoder_of(sample_type)
        self._fast = _compile(self.specs) if self.specs else None
        self._layouts: dict[int, Layout | None] = {}  # by sample length

    def batch(self, views: Sequence[Buffer], keys: list[str], urls: Callable[[int], str]) -> SampleBatch:
        """A :class:`SampleBatch` of the samples ``views`` (``urls(i)`` names sample i's shard)."""
        if self._fast is not None and views:
            columns = self._columns_by_layout(views)
            if columns is not None:
                return SampleBatch(self.sample_type, columns, keys)
            try:
                columns = self._fast(views)
            except Exception:  # a sample msgpack cannot unpack: the slow path names it
                columns = None
            if columns is not None:
                return SampleBatch(self.sample_type, columns, keys)
        samples = [self.checked(v, k, urls(i)) for i, (v, k) in enumerate(zip(views, keys))]
        return SampleBatch(self.sample_type, self._columns_of(samples), keys)

    def run(self, rows: np.ndarray, keys: list[str]) -> RunBatches | None:
        """Batches of a run of samples given as one byte matrix (``rows``: one sample per
        row, all of one length), checked against one layout at once; None if they do not
        share one (decode the run's batches with :meth:`batch` then)."""
        if self._fast is None or not len(rows):
            return None
        length = rows.shape[1]
        if length not in self._layouts:
            self._layouts[length] = layout_of(rows[0].tobytes(), self.specs)
        layout = self._layouts[length]
        if layout is None or not layout.fits(rows):
            return None
        arrays = {spec.name for spec in self.specs if spec.kind == "ndarray"}
        scalars = layout.cut(rows, [spec.name for spec in self.specs if spec.name not in arrays])
        if scalars is None:
            return None
        return RunBatches(self.sample_type, layout, rows, keys, scalars, arrays)

    def _columns_by_layout(self, views: Sequence[Buffer]) -> dict[str, np.ndarray | list[Any]] | None:
        """The batch's columns cut from its bytes (:mod:`atdata._read.layout`), or None.

        A layout is learnt once per sample length. Samples of several lengths share no
        layout and are turned away first, before any copy; a batch of one length that the
        layout does not fit teaches the layout of its own first sample, kept if it fits.
        """
        length = len(views[0])
        if max(map(len, views)) != length or min(map(len, views)) != length:
            return None
        if length not in self._layouts:
            self._layouts[length] = layout_of(views[0], self.specs)
        layout = self._layouts[length]
        if layout is None:
            return None
        joined = b"".join(views)
        rows = np.frombuffer(joined, np.uint8).reshape(len(views), length)
        if not layout.fits(rows, joined):
            relearnt = layout_of(views[0], self.specs)
            if relearnt is None or not relearnt.fits(rows, joined):
                return None
            self._layouts[length] = layout = relearnt
        return layout.cut(rows)

    def checked(self, view: Buffer, key: str, url: str) -> Any:
        """One sample, with any :class:`SampleDecodeError` naming its key and shard."""
        try:
            return self.decode(unpack(view))
        except SampleDecodeError as exc:
            raise SampleDecodeError(f"{exc} (sample {key!r} in shard {url!r})") from exc

    def _columns_of(self, samples: list[Any]) -> dict[str, np.ndarray | list[Any]]:
        if self.specs:
            names = [spec.name for spec in self.specs]
            columns = {name: [getattr(s, name) for s in samples] for name in names}
            arrays = {spec.name for spec in self.specs if spec.kind == "ndarray"}
        else:  # DictSample: the union of keys, in first-seen order
            names = list(dict.fromkeys(k for s in samples for k in s.keys()))
            columns = {name: [s.get(name) for s in samples] for name in names}
            arrays = set(names)
        return {name: _stacked(col) if name in arrays else col for name, col in columns.items()}


class RunBatches:
    """A run's samples, all checked against one layout: any slice of them is a batch.

    Scalar columns are cut for the whole run at once; each batch's arrays are copied
    straight from the run's rows into an array the batch owns.
    """

    def __init__(
        self,
        sample_type: type,
        layout: Layout,
        rows: np.ndarray,
        keys: list[str],
        scalars: dict[str, np.ndarray | list[Any]],
        arrays: set[str],
    ) -> None:
        self._sample_type = sample_type
        self._layout = layout
        self._rows = rows
        self._keys = keys
        self._scalars = scalars
        self._arrays = arrays
        self._names = [spec.name for spec in fields_of(sample_type)]

    def batch(self, start: int, end: int) -> SampleBatch:
        """The samples ``start:end`` of the run."""
        arrays = self._layout.cut(self._rows[start:end], self._arrays) or {}
        columns = {name: arrays[name] if name in arrays else self._scalars[name][start:end] for name in self._names}
        return SampleBatch(self._sample_type, columns, self._keys[start:end])


def _stacked(values: list[Any]) -> np.ndarray | list[Any]:
    """One ``(n, *shape)`` array when every value is an array of one dtype and shape."""
    if not values or not all(isinstance(v, np.ndarray) for v in values):
        return values
    first = values[0]
    if any(v.shape != first.shape or v.dtype != first.dtype for v in values):
        return values
    return np.stack(values, dtype=first.dtype)  # keep the stored byte order


def _compile(specs: tuple[FieldSpec, ...]) -> Callable[[Sequence[Buffer]], dict[str, Any] | None]:
    """Generate the fast batch loop for ``specs``; it returns None to ask for the slow path.

    Per sample: one unpack, one subscript per field, one append per field, and for an
    NDArray field a length and header-prefix comparison. Scalar types are checked per
    column after the loop (``set(map(type, column))`` runs in C). Any exception (a
    missing field, a value of the wrong kind) also means "slow path". Small array
    payloads are joined once at the end; payloads of :data:`_BIG` bytes or more are
    copied straight into the output array as they come.
    """
    env: dict[str, Any] = {
        "_unpackb": msgpack.unpackb,
        "_dict": dict,
        "_mv": memoryview,
        "_BIG": _BIG,
        "_first": _first_array,
        "_out": _output_array,
        "_stack": _stack_payloads,
        "_types": _column_types,
    }
    setup: list[str] = ["    n = len(views)"]
    loop: list[str] = []
    checks: list[str] = []
    result: list[str] = []
    for i, spec in enumerate(specs):
        code = _field_code(i, spec, env)
        setup += code.setup
        loop += code.loop
        checks += code.checks
        result.append(code.result)
    source = "\n".join(
        [
            "def assemble(views):",
            *setup,
            "    try:",
            "        for j, m in enumerate(views):",
            "            d = _unpackb(m)",
            "            if d.__class__ is not _dict: return None",
            *loop,
            "    except Exception:",
            "        return None",
            *checks,
            f"    return {{{', '.join(result)}}}",
        ]
    )
    exec(compile(source, "<atdata batch assembler>", "exec"), env)
    return env["assemble"]


@dataclass(frozen=True)
class _FieldCode:
    """The generated lines of one field in the batch loop of :func:`_compile`."""

    setup: list[str]  # before the loop: its column and append
    loop: list[str]  # per sample
    checks: list[str]  # after the loop: the column's types
    result: str  # its entry in the returned dict


def _field_code(i: int, spec: FieldSpec, env: dict[str, Any]) -> _FieldCode:
    """Field ``i``'s lines (the names they use added to ``env``): an NDArray field checks
    each payload against the first one's header; any other field is type-checked after."""
    name = repr(spec.name)
    setup = [f"    c{i} = []", f"    a{i} = c{i}.append"]
    if spec.kind == "ndarray":
        env[f"_spec{i}"] = spec
        setup += [f"    h{i} = None", f"    o{i} = w{i} = None"]
        loop = [
            f"            v = d[{name}]",
            f"            if h{i} is None:",
            f"                h{i} = _first(v, _spec{i})",
            f"                if h{i} is None: return None",
            f"                hb{i}, n{i}, hl{i}, p{i} = h{i}[0], h{i}[1], h{i}[2].offset, h{i}[2].nbytes",
            f"                if p{i} >= _BIG: o{i}, w{i} = _out(n, h{i}[2])",
            f"            elif len(v) != n{i} or not v.startswith(hb{i}): return None",
            f"            if w{i} is None: a{i}(v)",
            f"            else: w{i}[j * p{i}:(j + 1) * p{i}] = _mv(v)[hl{i}:]",
        ]
        return _FieldCode(setup, loop, [], f"{name}: o{i} if o{i} is not None else _stack(c{i}, h{i}, n)")
    env[f"_t{i}"] = {"list": list, "dict": dict}.get(spec.kind) or PRIMITIVE_KINDS[spec.kind]
    checks = [f"    if _types(c{i}) != {{_t{i}}}: return None"]
    if spec.items is not None:
        env[f"_item{i}"] = PRIMITIVE_KINDS[spec.items.kind]
        checks.append(f"    for x in c{i}:\n        if x and _types(x) != {{_item{i}}}: return None")
    return _FieldCode(setup, [f"            a{i}(d[{name}])"], checks, f"{name}: c{i}")


def _column_types(column: list[Any]) -> set[type]:
    return set(map(type, column))


def _first_array(value: bytes, spec: FieldSpec) -> tuple[bytes, int, npy.NpyHeader] | None:
    """Header bytes, buffer length and parsed header of a batch's first array, if stackable."""
    if value.__class__ is not bytes:
        return None
    try:
        header = npy.parse_header(value)
    except SampleDecodeError:
        return None
    if header.end != len(value) or (header.fortran_order and len(header.shape) > 1):
        return None
    if spec.dtype is not None and header.dtype != np.dtype(spec.dtype):
        return None
    return value[: header.offset], len(value), header


def _output_array(n: int, header: npy.NpyHeader) -> tuple[np.ndarray, memoryview]:
    """An empty ``(n, *shape)`` array and a flat byte view to copy payloads into."""
    out = np.empty((n, *header.shape), header.dtype)
    return out, memoryview(out.reshape(-1).view(np.uint8))  # type: ignore[arg-type]  # ndarray is a buffer


def _stack_payloads(parts: list[bytes], first: tuple[bytes, int, npy.NpyHeader], n: int) -> np.ndarray:
    """Copy the payloads of ``n`` equal-length ``.npy`` buffers into one ``(n, *shape)`` array."""
    _, length, header = first
    rows = np.frombuffer(b"".join(parts), np.uint8).reshape(n, length)[:, header.offset :]
    return rows.copy().view(header.dtype).reshape((n, *header.shape))
