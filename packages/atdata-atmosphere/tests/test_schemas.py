"""Local schema records <-> science.alt.dataset.schema: every field kind survives the round trip."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

import atdata
from atdata.atmosphere import validate_record
from atdata.atmosphere.schemas import decode, from_atmosphere, same_schema, to_atmosphere
from atdata.schema import same_fields, to_record


@atdata.packable
class EveryKind:
    image: NDArray[np.float32]
    anything: NDArray
    label: str
    count: int
    score: float
    flag: bool
    raw: bytes
    names: list[str]
    extra: dict[str, Any]
    note: str | None = None


def test_round_trip_keeps_fields_order_and_optionality() -> None:
    local = to_record(EveryKind, "1.2.3", "every kind")
    record = to_atmosphere(local, "mymod.EveryKind")
    validate_record("science.alt.dataset.schema", record)
    assert record["schema"]["atdataFieldOrder"] == [f["name"] for f in local["fields"]]
    assert "note" not in record["schema"]["required"] and "label" in record["schema"]["required"]
    back = from_atmosphere(record)
    assert same_fields({**local, "name": "mymod.EveryKind"}, back)
    cls = decode(record)
    assert (cls.__name__, cls.__module__) == ("EveryKind", "mymod")
    sample = cls(
        image=np.zeros(2, np.float32), anything=np.ones(1), label="a", count=1, score=0.5, flag=True,
        raw=b"x", names=["n"], extra={"k": 1},
    )  # fmt: skip
    assert EveryKind.from_bytes(sample.packed).label == "a"  # the same wire format both ways


def test_same_schema_sees_a_changed_field_set() -> None:
    record = to_atmosphere(to_record(EveryKind, "1.0.0"), "mymod.EveryKind")
    other = {**record, "schema": {**record["schema"], "required": ["image"]}}
    assert same_schema(record, dict(record)) and not same_schema(record, other)
