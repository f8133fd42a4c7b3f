"""The lexicon validator: records we build pass, each kind of bad value is named with its path."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from atdata.atmosphere import validate_record
from atdata.atmosphere.lexicon import lexicon
from atdata.atmosphere.records import encode_metadata, record_cid
from atdata.errors import InvalidRecord

# The shared notes sit beside the checkout (or a folder above a worktree).
_ROOT = Path(__file__).resolve().parents[3]
SHARED = next(
    (p / "shared/lexicons/science/alt/dataset" for p in _ROOT.parents if (p / "shared/lexicons").is_dir()),
    _ROOT / "missing",
)

CHECKSUM = {"algorithm": "sha256", "digest": "ab" * 32}
GOOD: dict[str, Any] = {
    "$type": "science.alt.dataset.entry",
    "name": "train",
    "schemaRef": "at://did:plc:abc/science.alt.dataset.schema/m.S:1.0.0",
    "storage": {
        "$type": "science.alt.dataset.storageS3",
        "bucket": "b",
        "endpoint": "http://127.0.0.1:9000",
        "shards": [{"key": "ds/data-000000.tar", "checksum": CHECKSUM}],
    },
    "size": {"bytes": 10, "shards": 1},
    "metadata": encode_metadata({"atdataCid": "bafyrei..."}),
    "tags": ["images"],
    "createdAt": "2026-12-02T00:00:00.000Z",
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.pop("schemaRef"), r"\$ lacks the required field 'schemaRef'"),
        (lambda r: r.update(name="x" * 201), r"\$.name is 201 bytes long"),
        (lambda r: r.update(schemaRef="not-an-at-uri"), r"\$.schemaRef .* not a valid at-uri"),
        (lambda r: r.update(createdAt="yesterday"), r"\$.createdAt .* not a valid datetime"),
        (lambda r: r["storage"]["shards"][0]["checksum"].pop("digest"), r"checksum lacks the required field 'digest'"),
        (lambda r: r["storage"].update({"$type": "x.y.storageFtp"}), r"\$.storage has \$type 'x.y.storageFtp'"),
        (lambda r: r["storage"].update(shards=[]), r"\$.storage.shards has 0 items"),
        (lambda r: r["size"].update(bytes=1.5), r"\$.size.bytes is a float"),
        (lambda r: r.update(extra={"deep": [0.5]}), r"\$.extra.deep\[0\] is a float"),
        (lambda r: r.update(tags="images"), r"\$.tags must be an array"),
        (lambda r: r.update(metadata=b"raw"), r"\$.metadata must be bytes"),
    ],
)
def test_bad_records_are_refused_naming_the_path(change: Any, message: str) -> None:
    validate_record("science.alt.dataset.entry", GOOD)
    bad = copy.deepcopy(GOOD)
    change(bad)
    with pytest.raises(InvalidRecord, match=message):
        validate_record("science.alt.dataset.entry", bad)


def test_blob_storage_checks_mime_type_and_size() -> None:
    blob = {"$type": "blob", "ref": {"$link": "bafkreiabc"}, "mimeType": "application/x-tar", "size": 10}
    record = {**GOOD, "storage": {"$type": "science.alt.dataset.storageBlobs", "blobs": [{"blob": blob}]}}
    validate_record("science.alt.dataset.entry", record)
    for bad, message in (({"mimeType": "text/plain"}, "mimeType"), ({"size": 52428801}, "maxSize")):
        wrong = {**record, "storage": {**record["storage"], "blobs": [{"blob": {**blob, **bad}}]}}
        with pytest.raises(InvalidRecord, match=message):
            validate_record("science.alt.dataset.entry", wrong)


def test_record_cid_reads_bytes_and_links_as_ipld() -> None:
    # {"$bytes": ...} is a CBOR byte string, not a map: the CID differs from the naive one.
    assert record_cid(GOOD) != record_cid({**GOOD, "metadata": {"b": GOOD["metadata"]["$bytes"]}})
    assert record_cid(GOOD).startswith("bafyrei")


@pytest.mark.skipif(not SHARED.is_dir(), reason="the shared lexicon set is not beside this checkout")
def test_shipped_lexicons_are_the_shared_ones() -> None:
    for path in SHARED.glob("*.json"):
        assert lexicon(f"science.alt.dataset.{path.stem}") == json.loads(path.read_text()), path.name
