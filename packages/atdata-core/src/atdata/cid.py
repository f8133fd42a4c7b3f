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

from dataclasses import dataclass
from typing import Any

import dag_cbor
from multiformats import CID, multihash

from .errors import InvalidArgument

__all__ = ["ParsedCID", "cid_from_bytes", "encode_dag_cbor", "generate_cid", "parse_cid", "verify_cid"]

_CODEC = "dag-cbor"
_HASH = "sha2-256"


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

    Raises
    ------
    InvalidArgument
        ``obj`` holds something DAG-CBOR cannot represent (a tuple, a set, a non-string
        map key, NaN/Infinity, an int outside 64 bits); the message says where.
    """
    try:
        return dag_cbor.encode(obj)
    except dag_cbor.encoding.CBOREncodingError as exc:
        raise InvalidArgument(
            f"cannot compute a CID of {_short(obj)}: {exc} "
            "(use only dict with str keys, list, str, bytes, int, finite float, bool, None)"
        ) from exc


def cid_from_bytes(data: bytes) -> str:
    """CIDv1 (dag-cbor, sha2-256, base32) of bytes that already are DAG-CBOR.

    Parameters
    ----------
    data : bytes
        An encoded DAG-CBOR block; it is hashed as is, not re-encoded.

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
    digest = multihash.digest(bytes(data), _HASH)
    return str(CID("base32", 1, _CODEC, digest))


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
    string); to check an encoded block, compare ``cid_from_bytes(block)``.

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
