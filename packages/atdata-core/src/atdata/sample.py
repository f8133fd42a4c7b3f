"""Typed samples and their wire format: one msgpack map per sample.

``@atdata.packable`` turns an annotated class into a dataclass that subclasses
:class:`PackableSample`; ``@dataclass class X(PackableSample)`` works too. A sample
packs to a msgpack map of field name -> value, NDArray fields as ``np.save`` bytes
(see ``## Wire format`` in the atdata-core README), which is what existing atdata
shards hold.

Speed: the first use of a sample class compiles a per-class codec (a decode and a pack
function generated from its :class:`FieldSpec` tuple, the way
``dataclasses`` generates ``__init__``), so decoding a sample costs one type check per
field and no ``typing`` introspection. Decoding builds instances without calling
``__init__``/``__post_init__``, as ``pickle`` does.

Decoding policy (documented in the README): unknown keys are ignored, a missing
``Optional`` field reads as ``None``, a missing required field, a value of the wrong
type or a bad array raises :class:`~atdata.errors.SampleDecodeError` naming the field,
what was expected and what was found.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ._sample.codec import unpack
from ._sample.dictsample import DictSample
from ._sample.fields import FieldSpec
from ._sample.keys import new_key
from ._sample.packable import PackableSample, codec_of, packable

__all__ = [
    "DictSample",
    "FieldSpec",
    "PackableSample",
    "decoder_of",
    "fields_of",
    "new_key",
    "packable",
    "unpack",
]

S = TypeVar("S", bound=PackableSample)


def fields_of(sample_type: type) -> tuple[FieldSpec, ...]:
    """The :class:`FieldSpec` of each field of ``sample_type``, in declaration order.

    ``DictSample`` has no fixed fields and returns ``()``. Computed once per class.

    Raises
    ------
    InvalidArgument
        If ``sample_type`` is not a sample class.
    """
    if isinstance(sample_type, type) and issubclass(sample_type, DictSample):
        return ()
    return codec_of(sample_type).fields


def decoder_of(sample_type: type[S]) -> Callable[[dict[str, Any]], S]:
    """The compiled ``from_data`` of ``sample_type``: call it per sample on hot paths."""
    if isinstance(sample_type, type) and issubclass(sample_type, DictSample):
        return sample_type.from_data  # type: ignore[return-value]  # S is this DictSample class
    return codec_of(sample_type).decode
