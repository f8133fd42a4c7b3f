"""Content identifiers (CIDs) that match the ones ATProto computes for the same content.

An index entry is identified by the CID of its content (``{"schema_ref": ...,
"data_urls": [...]}``), so the same dataset gets the same identifier locally and in the
atmosphere. For that the bytes that are hashed must be exactly the ones every other
implementation produces: canonical DAG-CBOR (map keys sorted by length, then bytewise;
shortest integer encodings; floats always 64-bit; no NaN/Infinity), hashed with
sha2-256, wrapped as CIDv1 with the dag-cbor codec (0x71) and written in base32
(``bafyrei...``). ``dag-cbor`` does the canonical encoding and ``multiformats`` the CID
framing; the tests pin both against fixtures from ipld/codec-fixtures.
"""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass
from typing import Any

import dag_cbor
from multiformats import CID, multihash

from .errors import InvalidArgument

__all__ = ["ParsedCID", "cid_from_bytes", "encode_dag_cbor", "entry_cid", "generate_cid", "parse_cid", "verify_cid"]

_CODEC = "dag-cbor"
_HASH = "sha2-256"
# Varints: CID version 1, codec dag-cbor (0x71), multihash sha2-256 (0x12), digest length 32.
_CID_V1_DAG_CBOR_SHA256 = bytes([0x01, 0x71, 0x12, 0x20])


@dataclass(frozen=True)
class ParsedCID:
    """The parts of a CID string.

    Attributes
    ----------
    version : int
        CID version (1 for everything atdata generates).
    codec : str
        Multicodec name of the content, e.g. ``"dag-cbor"``.
    hash_name : str
        Multihash function name, e.g. ``"sha2-256"``.
    digest : bytes
        The raw hash digest.
    """

    version: int
    codec: str
    hash_name: str
    digest: bytes


def encode_dag_cbor(obj: Any) -> bytes:
    """Canonical DAG-CBOR bytes of ``obj`` (the bytes a CID hashes).

    Plain JSON-like values take a small encoder of our own (about 20x faster than the
    ``dag-cbor`` package, whose run-time type validation dominates an index write);
    anything else (e.g. a ``multiformats.CID`` link) and every error goes through
    ``dag-cbor`` itself. The tests check both give identical bytes.

    Raises
    ------
    InvalidArgument
        ``obj`` holds something DAG-CBOR cannot represent (a tuple, a set, a non-string
        map key, NaN/Infinity, an int outside 64 bits, a lone surrogate in a string);
        the message says where.
    """
    out = bytearray()
    try:
        _encode_into(out, obj)
        return bytes(out)
    except _NotPlain:
        pass
    try:
        return dag_cbor.encode(obj)
    except (dag_cbor.encoding.CBOREncodingError, UnicodeEncodeError) as exc:
        raise InvalidArgument(
            f"cannot compute a CID of {_short(obj)}: {exc} "
            "(use only dict with str keys, list, str, bytes, int, finite float, bool, None)"
        ) from exc


class _NotPlain(Exception):
    """A value the fast encoder leaves to ``dag-cbor`` (which encodes it or explains why not)."""


def _head(out: bytearray, major: int, n: int) -> None:
    """A CBOR item head with the shortest argument encoding (DAG-CBOR requires it)."""
    if n < 24:
        out.append(major << 5 | n)
    elif n < 0x100:
        out += struct.pack(">BB", major << 5 | 24, n)
    elif n < 0x10000:
        out += struct.pack(">BH", major << 5 | 25, n)
    elif n < 0x100000000:
        out += struct.pack(">BI", major << 5 | 26, n)
    else:
        out += struct.pack(">BQ", major << 5 | 27, n)


def _encode_into(out: bytearray, value: Any) -> None:
    if value is None:
        out.append(0xF6)
    elif value is True:
        out.append(0xF5)
    elif value is False:
        out.append(0xF4)
    elif type(value) is int:
        if 0 <= value < 1 << 64:
            _head(out, 0, value)
        elif -(1 << 64) <= value < 0:
            _head(out, 1, -1 - value)
        else:
            raise _NotPlain
    elif type(value) is float:
        if not math.isfinite(value):
            raise _NotPlain
        out.append(0xFB)  # always 64-bit: DAG-CBOR never shortens floats
        out += struct.pack(">d", value)
    elif type(value) is str:
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError:
            raise _NotPlain from None
        _head(out, 3, len(data))
        out += data
    elif type(value) is bytes:
        _head(out, 2, len(value))
        out += value
    elif type(value) is list:
        _head(out, 4, len(value))
        for item in value:
            _encode_into(out, item)
    elif type(value) is dict:
        keys = []
        for key in value:
            if type(key) is not str:
                raise _NotPlain
            keys.append((key.encode("utf-8"), key))
        keys.sort(key=lambda pair: (len(pair[0]), pair[0]))  # by length, then bytewise
        _head(out, 5, len(keys))
        for encoded, key in keys:
            _head(out, 3, len(encoded))
            out += encoded
            _encode_into(out, value[key])
    else:
        raise _NotPlain


def cid_from_bytes(data: bytes) -> str:
    """CIDv1 (dag-cbor, sha2-256, base32) of bytes that already are DAG-CBOR.

    Parameters
    ----------
    data : bytes
        Encoded DAG-CBOR bytes; they are hashed as is, not re-encoded.

    Returns
    -------
    str
        ``"bafyrei..."``.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidArgument(
            f"cid_from_bytes expects encoded DAG-CBOR bytes, got {type(data).__name__}; "
            "use generate_cid(obj) for Python values"
        )
    # Framed by hand: multiformats' generic encoder costs milliseconds per CID (run-time
    # type validation), this costs microseconds. The tests check both agree.
    return "b" + _base32(_CID_V1_DAG_CBOR_SHA256 + hashlib.sha256(data).digest())


_B32 = "abcdefghijklmnopqrstuvwxyz234567"  # RFC 4648 alphabet, lower case (multibase "b")
_B32_PAIRS = [a + b for a in _B32 for b in _B32]  # every 10-bit group as two characters


def _base32(raw: bytes) -> str:
    """Unpadded lower-case RFC 4648 base32 (``base64.b32encode`` is pure Python and ~20x slower)."""
    nbits = len(raw) * 8
    pad = -nbits % 5
    value = int.from_bytes(raw, "big") << pad
    nchars = (nbits + pad) // 5
    out = [_B32[value >> (nchars - 1) * 5 & 31]] if nchars % 2 else []
    out += [_B32_PAIRS[value >> shift & 1023] for shift in range((nchars // 2) * 10 - 10, -1, -10)]
    return "".join(out)


def generate_cid(obj: Any) -> str:
    """CIDv1 of the canonical DAG-CBOR encoding of ``obj``.

    Dict insertion order does not matter (keys are sorted canonically), so equal
    content always gives the same CID, in any process and in any ATProto implementation.

    Parameters
    ----------
    obj
        Plain data: dict (str keys), list, str, bytes, int, float, bool, None.

    Returns
    -------
    str
        ``"bafyrei..."``.

    Raises
    ------
    InvalidArgument
        ``obj`` holds a value DAG-CBOR cannot represent.
    """
    return cid_from_bytes(encode_dag_cbor(obj))


def entry_cid(schema_ref: str, data_urls: list[str]) -> str:
    """The CID of an index entry: ``generate_cid({"schema_ref": ..., "data_urls": [...]})``.

    The spec's rule, here once, so every index and ``Repo`` give identical content the
    same CID (name and metadata are not part of it), locally and on ATProto.
    """
    return generate_cid({"schema_ref": schema_ref, "data_urls": list(data_urls)})


def parse_cid(cid: str) -> ParsedCID:
    """Split a CID string into version, codec, hash function and digest.

    Raises
    ------
    InvalidArgument
        ``cid`` is not a valid CID string.
    """
    if not isinstance(cid, str):
        raise InvalidArgument(f"a CID is a string like 'bafyrei...', got {type(cid).__name__}")
    try:
        parsed = CID.decode(cid)
    except Exception as exc:  # multiformats raises several unrelated types for bad input
        raise InvalidArgument(f"{cid!r} is not a valid CID (expected a CIDv1 string like 'bafyrei...')") from exc
    return ParsedCID(
        version=parsed.version,
        codec=parsed.codec.name,
        hash_name=parsed.hashfun.name,
        digest=bytes(parsed.raw_digest),
    )


def verify_cid(cid: str, obj: Any) -> bool:
    """Whether ``cid`` is the CID of the Python value ``obj`` (as ``generate_cid`` computes it).

    Compares the decoded CID, not the string, so the same CID written in another
    multibase still verifies. ``bytes`` are a value like any other (a CBOR byte
    string); to check encoded DAG-CBOR bytes, compare ``cid_from_bytes(data)``.

    Raises
    ------
    InvalidArgument
        ``cid`` is not a valid CID string, or ``obj`` cannot be encoded.
    """
    parsed = parse_cid(cid)
    data = encode_dag_cbor(obj)
    if parsed.codec != _CODEC:
        return False
    try:
        digest = multihash.digest(data, parsed.hash_name)
    except Exception:  # a hash function multiformats cannot compute: cannot be ours
        return False
    return digest == CID.decode(cid).digest


def _short(obj: Any, limit: int = 80) -> str:
    text = repr(obj)
    return text if len(text) <= limit else text[: limit - 3] + "..."
