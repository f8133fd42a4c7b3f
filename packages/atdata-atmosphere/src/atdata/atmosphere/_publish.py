"""Writing records: validated against the lexicon, CID computed first and checked against the PDS's.

``publish_schema`` is the one way a schema reaches a repo (``promote_to_atmosphere`` and
``AtmosphereIndex.publish_schema`` both use it): one record per name and version under
a deterministic key, so publishing is idempotent and a conflicting field set is refused.
"""

from __future__ import annotations

from typing import Any

from atdata.errors import AtmosphereAuthError, AtmosphereError, RecordNotFound, SchemaConflict
from atdata.schema import parse_schema_ref

from .client import AtmosphereClient
from .lexicon import validate_record
from .records import record_cid
from .schemas import SCHEMA_NSID, same_schema, schema_rkey, to_atmosphere

__all__ = ["publish_schema", "write_record"]


def publish_schema(local_record: dict[str, Any], local_ref: str, client: AtmosphereClient) -> str:
    """The AT-URI of the schema in ``client``'s repo: an identical record reused, else created.

    Raises ``SchemaConflict`` if the same name and version is there with other fields.
    """
    ref = parse_schema_ref(local_ref)
    record = to_atmosphere(local_record, ref.name)
    rkey = schema_rkey(ref.name, ref.version)
    uri = f"at://{client.require_login()}/{SCHEMA_NSID}/{rkey}"
    failed: AtmosphereError | None = None
    for _attempt in range(2):  # a concurrent publisher may create it between our get and create
        try:
            existing, _ = client.get_record(uri)
        except RecordNotFound:
            try:
                return write_record(client, SCHEMA_NSID, record, rkey=rkey)
            except AtmosphereAuthError:
                raise
            except AtmosphereError as exc:  # a taken key is a 500 on this PDS: the next get decides
                failed = exc
                continue
        if not same_schema(existing, record):
            raise SchemaConflict(
                f"{uri} already holds schema {ref.name}@{ref.version} with other fields: published versions are "
                "immutable; publish the changed sample type under a new version (e.g. publish_schema(T, version=None))"
            )
        return uri
    assert failed is not None  # the loop only ends after a failed create
    raise failed


def write_record(client: AtmosphereClient, nsid: str, record: dict[str, Any], rkey: str | None) -> str:
    """Validate, compute the CID, create; the PDS's CID must be ours (else the record is withdrawn)."""
    validate_record(nsid, record)
    expected = record_cid(record)
    uri, cid = client.create_record(nsid, record, rkey=rkey)
    if cid != expected:
        client.delete_record(uri)
        raise AtmosphereError(f"the PDS stored {uri} as CID {cid}, we computed {expected}: withdrawn (please report)")
    return uri
