"""`atdata schemas` tells apart classes of one name from two modules (real valkey).

A schema record's ``name`` is the bare class name, so ``mod_a.Sample`` and
``mod_b.Sample`` used to list as the same ``Sample@1.0.0`` twice, and ``schema show
Sample`` silently showed one of them.
"""

from __future__ import annotations

import importlib
import json
import uuid
from pathlib import Path

import pytest

from atdata.index_redis import LocalIndex
from atdata.local.cli import main
from atdata.local.servers import RedisServer

_MODULE = """
import atdata
from numpy.typing import NDArray


@atdata.packable
class Sample:
{fields}
"""


def _publish_two(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, index: LocalIndex) -> tuple[str, str]:
    """``Sample`` published from two modules with other fields; returns the module names."""
    tag = uuid.uuid4().hex[:8]
    mods = (f"mod_a_{tag}", f"mod_b_{tag}")
    for mod, fields in zip(mods, ("    features: NDArray\n    label: int", "    text: str")):
        (tmp_path / f"{mod}.py").write_text(_MODULE.format(fields=fields))
    monkeypatch.syspath_prepend(str(tmp_path))
    for mod in mods:
        index.publish_schema(importlib.import_module(mod).Sample, version="1.0.0")
    return mods


def test_schemas_lists_refs_and_show_refuses_an_ambiguous_class_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], redis_server: RedisServer
) -> None:
    prefix = f"test-{uuid.uuid4().hex}:"
    index = LocalIndex.from_url(redis_server.url, key_prefix=prefix)
    mod_a, mod_b = _publish_two(tmp_path, monkeypatch, index)
    assert sorted(ref for ref, _ in index.schemas_by_ref()) == [
        f"local://schemas/{mod_a}.Sample@1.0.0",
        f"local://schemas/{mod_b}.Sample@1.0.0",
    ]
    conn = ["--redis-url", redis_server.url, "--key-prefix", prefix]

    assert main(["schemas", *conn]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"{mod_a}.Sample@1.0.0  2 fields", f"{mod_b}.Sample@1.0.0  1 fields"]
    assert main(["schemas", "--json", *conn]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [(r["ref"], r["name"]) for r in records] == [
        (f"local://schemas/{mod_a}.Sample@1.0.0", "Sample"),
        (f"local://schemas/{mod_b}.Sample@1.0.0", "Sample"),
    ]

    assert main(["schema", "show", "Sample", *conn]) == 1
    err = capsys.readouterr().err
    assert "ambiguous" in err and f"{mod_a}.Sample" in err and f"{mod_b}.Sample" in err
    for ref in (f"{mod_b}.Sample", f"{mod_b}.Sample@1.0.0", lines[1].split()[0]):
        assert main(["schema", "show", ref, *conn]) == 0
        shown = capsys.readouterr().out
        assert "text  str" in shown and "features" not in shown
