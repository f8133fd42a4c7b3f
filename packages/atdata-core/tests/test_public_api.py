"""Every documented import of atdata-core works, and each module's __all__ lists exactly its public names."""

from __future__ import annotations

import importlib
import re
import types
from pathlib import Path

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
                "check_schema_ref",
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


# Public modules whose every name is also an ``atdata`` name; cid, schema, npy and errors
# are reached as modules (``atdata.cid.generate_cid``, ``atdata.errors.ShardError``).
REEXPORTED = [
    "batch",
    "dataset",
    "disk_store",
    "openers",
    "protocols",
    "sample",
    "shard_url",
    "staging",
    "urls",
    "writing",
]
NAMESPACES = ["cid", "errors", "manifest", "names", "npy", "schema", "server_record"]
README = Path(__file__).resolve().parents[1] / "README.md"
ADDONS = ("atdata.local", "atdata.index_redis", "atdata.store_s3", "atdata.atmosphere", "atdata.promote", "atdata.ray")


@pytest.mark.parametrize("module_name", REEXPORTED)
def test_every_public_name_is_importable_from_atdata(module_name: str) -> None:
    module = importlib.import_module(f"atdata.{module_name}")
    assert module.__all__, module_name
    for name in module.__all__:
        assert name in atdata.__all__, f"atdata.{module_name}.{name} is not re-exported by atdata"
        assert getattr(atdata, name) is getattr(module, name)


def test_namespaces_are_atdata_attributes() -> None:
    for name in NAMESPACES:
        assert name in atdata.__all__ and getattr(atdata, name) is importlib.import_module(f"atdata.{name}")


def _documented_names() -> list[str]:
    text = README.read_text()
    return sorted({m for m in re.findall(r"\batdata(?:\.[A-Za-z_][A-Za-z0-9_]*)+", text) if not m.startswith(ADDONS)})


def test_every_name_the_core_readme_documents_imports() -> None:
    names = _documented_names()
    assert "atdata.Dataset" in names and "atdata.npy.parse_header" in names
    for dotted in names:
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):  # the longest importable module prefix, then attributes
            try:
                obj: object = importlib.import_module(".".join(parts[:cut]))
            except ModuleNotFoundError:
                continue
            break
        for attr in parts[cut:]:
            assert hasattr(obj, attr), f"the README documents {dotted}, which does not import"
            obj = getattr(obj, attr)


def test_the_core_readme_documents_no_private_module() -> None:
    def private(part: str) -> bool:
        return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))  # __all__ is public

    assert [name for name in _documented_names() if any(map(private, name.split(".")[1:]))] == []
