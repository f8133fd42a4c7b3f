"""Every documented import of atdata-core works, and each module's __all__ lists exactly its public names."""

from __future__ import annotations

import types

import pytest

import atdata
import atdata.npy
import atdata.sample
import atdata.schema


def test_documented_sample_and_schema_imports() -> None:
    from atdata import DictSample, PackableSample, packable, schema
    from atdata.npy import NpyHeader, decode, encode, parse_header
    from atdata.sample import FieldSpec, decoder_of, fields_of
    from atdata.schema import SchemaRef, from_record, parse_schema_ref, same_fields, schema_ref, to_record

    assert issubclass(DictSample, PackableSample) and callable(packable) and schema is atdata.schema
    assert FieldSpec.__name__ == "FieldSpec" and NpyHeader.__name__ == "NpyHeader"
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
            {
                "SCHEMA_REF_PREFIX",
                "SchemaRef",
                "from_record",
                "parse_schema_ref",
                "same_fields",
                "schema_ref",
                "to_record",
            },
        ),
        (atdata.npy, {"MAGIC", "NpyHeader", "cached_header", "decode", "encode", "parse_header"}),
    ],
)
def test_all_lists_exactly_the_documented_names(module: types.ModuleType, names: set[str]) -> None:
    assert set(module.__all__) == names
    assert all(hasattr(module, name) for name in names)


def test_top_level_all_is_exactly_the_public_surface() -> None:
    public = {name for name in vars(atdata) if not name.startswith("_")} - {"logging"}
    # Subpackages of add-on distributions appear as attributes once imported; they are
    # reached as `atdata.<sub>`, not re-exported by core.
    public -= {"index_redis", "store_s3", "local", "testing"}
    # Submodules imported for their side effects are attributes too; the documented ones are in __all__.
    internal_modules = {name for name in public if isinstance(getattr(atdata, name), types.ModuleType)} - set(
        atdata.__all__
    )
    assert set(atdata.__all__) - {"__version__"} == public - internal_modules
    assert all(hasattr(atdata, name) for name in atdata.__all__)


def test_the_spec_user_api_imports_as_written() -> None:
    from atdata import Dataset, SampleBatch, errors, write_samples

    assert atdata.Dataset is Dataset and atdata.SampleBatch is SampleBatch
    assert errors.AtdataError and callable(write_samples)
    assert callable(atdata.packable) and isinstance(atdata.__version__, str)
