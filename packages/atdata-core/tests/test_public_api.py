"""Every documented import of atdata-core works, and each module's __all__ lists exactly its public names."""

from __future__ import annotations

import types

import pytest

import atdata
import atdata.sample
import atdata.schema


def test_documented_sample_and_schema_imports() -> None:
    from atdata import DictSample, PackableSample, packable, schema
    from atdata._fields import FieldSpec
    from atdata._npy import NpyHeader, decode, encode, parse_header
    from atdata.sample import decoder_of, fields_of
    from atdata.schema import SchemaRef, from_record, parse_schema_ref, same_fields, schema_ref, to_record

    assert issubclass(DictSample, PackableSample) and callable(packable) and schema is atdata.schema
    assert atdata.sample.FieldSpec is FieldSpec and NpyHeader.__name__ == "NpyHeader"
    assert all(callable(f) for f in (decode, encode, parse_header, decoder_of, fields_of))
    assert all(callable(f) for f in (SchemaRef, from_record, parse_schema_ref, same_fields, schema_ref, to_record))


@pytest.mark.parametrize(
    ("module", "names"),
    [
        (
            atdata.sample,
            {"DictSample", "FieldSpec", "PackableSample", "decoder_of", "fields_of", "new_key", "packable", "unpack"},
        ),
        (
            atdata.schema,
            {"SCHEMA_REF_PREFIX", "SchemaRef", "from_record", "parse_schema_ref", "same_fields", "schema_ref", "to_record"},
        ),
        (atdata._npy, {"MAGIC", "NpyHeader", "cached_header", "decode", "encode", "parse_header"}),
        (
            atdata._fields,
            {"NDARRAY_DTYPE_KINDS", "PRIMITIVE_KINDS", "SUPPORTED", "FieldSpec", "check_annotations", "field_specs",
             "spec_for_annotation"},
        ),
    ],
)
def test_all_lists_exactly_the_documented_names(module: types.ModuleType, names: set[str]) -> None:
    assert set(module.__all__) == names
    assert all(hasattr(module, name) for name in names)
