"""Every error a user of atdata can cause, in one tree.

Catch :class:`AtdataError` to handle them all. The bases group errors by what the
caller can do about them; each class says when it is raised. Messages name the bad
value and the fix, and never contain a secret (S3 keys, Redis passwords).

Where callers already catch a builtin (``KeyError`` for lookups, ``ValueError`` for
bad arguments, ``ConnectionError`` for unreachable servers), the atdata class mixes
that builtin in, so existing ``except`` clauses keep working::

    AtdataError
    ├── InvalidArgument (+ValueError)         a parameter value is out of range or of the wrong type
    │   ├── MissingField (+TypeError)         a sample class called without a required field
    │   ├── AmbiguousEntry                    a CID several names share, where one entry is meant
    │   └── HiveOwnedElsewhere                a hive another index owns, or one holding data no index claims
    ├── SampleDecodeError (+ValueError)       bytes that are not a valid sample (names the field)
    ├── ShardError                            corrupt or truncated shard (names the shard URL and member)
    │   └── ShardDigestMismatch               bytes differ from the shard's manifest (names range, digests)
    │       └── ShardSizeMismatch             shard shorter or longer than its manifest records
    ├── UnsupportedURL (+ValueError)          a URL no registered opener can read
    ├── SchemaError                           type <-> schema record problems
    │   ├── UnsupportedFieldType (+TypeError) an annotation atdata cannot pack
    │   ├── SchemaConflict                    same schema version published with different fields
    │   ├── SchemaMismatch (+ValueError)      stored samples that do not match the sample type (names shard, member)
    │   ├── InvalidSchemaRef (+ValueError)    a schema ref that is not local://schemas/{module}.{Class}@{semver}
    │   └── SchemaNotFound (+LookupError)     no schema under that ref or name
    ├── EntryNotFound (+KeyError)             no index entry with that name or CID
    ├── CredentialsError (+ValueError)        bad or missing credentials file or key
    ├── IndexConnectionError (+ConnectionError)  cannot reach or authenticate to Redis
    ├── IndexServerError                      Redis refused a command (READONLY replica, OOM, MISCONF...)
    ├── LocalServerError                      an embedded local server could not start or stop
    ├── AtmosphereError                       an ATProto PDS refused or failed a request (names PDS and call)
    │   ├── AtmosphereAuthError (+PermissionError)  bad password, expired session, not logged in
    │   ├── AtmosphereUnavailable (+ConnectionError)  the PDS cannot be reached
    │   ├── RecordNotFound (+LookupError)     no record at that AT-URI
    │   └── InvalidRecord (+ValueError)       a record that does not match its lexicon (names the path)
    └── StoreError                            the object store failed (names the URL)
        ├── ObjectNotFound (+LookupError)     no object at that URL
        ├── BucketNotFound (+LookupError)     the bucket does not exist
        ├── AccessDenied (+PermissionError)   the credentials were refused
        │   └── CredentialsRefused (+CredentialsError)  the keys themselves (wrong secret, unknown key)
        └── StoreUnavailable (+ConnectionError)  the store cannot be reached
"""

from __future__ import annotations

__all__ = [
    "AccessDenied",
    "AmbiguousEntry",
    "AtdataError",
    "AtmosphereAuthError",
    "AtmosphereError",
    "AtmosphereUnavailable",
    "BucketNotFound",
    "CredentialsError",
    "CredentialsRefused",
    "EntryNotFound",
    "HiveOwnedElsewhere",
    "IndexConnectionError",
    "IndexServerError",
    "InvalidArgument",
    "InvalidRecord",
    "InvalidSchemaRef",
    "LocalServerError",
    "MissingField",
    "ObjectNotFound",
    "RecordNotFound",
    "SampleDecodeError",
    "SchemaConflict",
    "SchemaMismatch",
    "SchemaError",
    "SchemaNotFound",
    "ShardDigestMismatch",
    "ShardError",
    "ShardSizeMismatch",
    "StoreError",
    "StoreUnavailable",
    "UnsupportedFieldType",
    "UnsupportedURL",
]


class AtdataError(Exception):
    """Base of every error a user of atdata can cause."""


class InvalidArgument(AtdataError, ValueError):
    """A parameter has a value atdata cannot use (e.g. ``maxcount=0``).

    Raised before any work starts, so nothing is written.
    """


class MissingField(InvalidArgument, TypeError):
    """A sample class was called without a required field (``TrainingSample(label=1)``).

    Names the class and every missing field. Also a ``TypeError``, which Python raises
    for a missing argument, so existing ``except TypeError`` clauses keep working.
    """


class SampleDecodeError(AtdataError, ValueError):
    """Bytes that do not decode to a sample of the requested type.

    Raised for truncated or non-msgpack bytes, a missing or mistyped field, an NDArray
    payload that is not a safe ``.npy`` buffer (object arrays are refused, never
    unpickled), or fields the sample type does not declare. The message names the field.
    """


class ShardError(AtdataError):
    """A shard that is not a readable tar file (corrupt header, truncated member).

    The message names the shard URL and, where known, the member.
    """


class ShardDigestMismatch(ShardError):
    """A chunk of a shard does not match the digest its manifest recorded at write time.

    Raised by verified reads (URLs that carry a manifest, such as an index entry's
    ``data_urls``) before any sample of that chunk is decoded.
    The message names the shard, the chunk and its byte range, and the expected and
    actual digests; the samples before the chunk were intact and may have been yielded.
    Restore the shard from a good copy, or delete it and re-insert the dataset (a re-insert
    reuses stored shards that still have their recorded sizes, so a damaged one must go first).
    """


class ShardSizeMismatch(ShardDigestMismatch):
    """A shard is shorter or longer than its manifest records (names both sizes)."""


class UnsupportedURL(AtdataError, ValueError):
    """A dataset URL whose scheme has no registered opener (e.g. ``s3://`` without
    ``atdata-store-s3`` installed), or a malformed brace pattern."""


class SchemaError(AtdataError):
    """Base of problems converting between sample types and schema records."""


class UnsupportedFieldType(SchemaError, TypeError):
    """A sample class declares a field whose annotation atdata cannot pack.

    Raised at decoration time (``@atdata.packable``) or when a schema record names
    a field type this version does not know.
    """


class SchemaConflict(SchemaError):
    """A schema version that is already published with different fields.

    Publish under a new version instead; published versions are immutable.
    """


class SchemaMismatch(SchemaError, ValueError):
    """Stored samples whose field names or wire types are not the sample type's.

    Raised by an insert before anything is indexed (``Repo.insert``, ``atdata insert``):
    the message names the shard, the member, the fields the type declares and the
    fields the sample holds (each with its wire type). Attributes ``url``, ``member``,
    ``expected`` and ``found`` hold the same (``found`` is ``None`` for a member that is
    not a msgpack map at all).
    """

    def __init__(self, message: str, *, url: str, member: str, expected: list[str], found: list[str] | None) -> None:
        super().__init__(message)
        self.url, self.member, self.expected, self.found = url, member, expected, found

    def __reduce__(self) -> tuple[object, ...]:
        return (_schema_mismatch, (str(self), self.url, self.member, self.expected, self.found))


def _schema_mismatch(
    message: str, url: str, member: str, expected: list[str], found: list[str] | None
) -> SchemaMismatch:
    return SchemaMismatch(message, url=url, member=member, expected=expected, found=found)


class InvalidSchemaRef(SchemaError, ValueError):
    """A schema ref that is not of the form ``local://schemas/{module}.{Class}@{semver}``."""


class SchemaNotFound(SchemaError, LookupError):
    """No schema is stored under that ref or name."""


class EntryNotFound(AtdataError, KeyError):
    """No index entry has that name or CID.

    Subclasses ``KeyError`` so lookups behave like a mapping; ``str()`` shows the plain
    message instead of ``KeyError``'s quoted repr.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class AmbiguousEntry(InvalidArgument):
    """A CID passed where one entry is meant (remove, rename) while several names share it.

    Names are pointers: each is its own entry, and a change to one never drops another.
    The message lists the names; pass one of them, or the entry itself.
    """


class HiveOwnedElsewhere(InvalidArgument):
    """An insert or gc through an index that does not own the hive (names the owner).

    gc deletes what its index does not reference, so a second index writing to or
    collecting in a hive would delete the first one's datasets. Also raised when a hive
    holds inserted data but no owner record: adopting it must be asked for explicitly
    (``Repo.adopt_hive()``, ``atdata adopt``).
    """


class CredentialsError(AtdataError, ValueError):
    """A credentials file or dict that is missing, unreadable or lacks a required key.

    Names the file and the key; never quotes a secret.
    """


class IndexConnectionError(AtdataError, ConnectionError):
    """Redis cannot be reached or refused authentication.

    Names host and port (never the password) and how to start a local server.
    """


class IndexServerError(AtdataError):
    """Redis was reached but refused a command: a read-only replica (READONLY), its
    maxmemory limit (OOM), a failed persistence (MISCONF), a key of another type.

    Names host and port, the server's own message and what to do. The index's writes
    are single scripts, so a refused one has written nothing.
    """


class LocalServerError(AtdataError):
    """An embedded local server (Redis or S3) could not be started, reached or stopped."""


class AtmosphereError(AtdataError):
    """An ATProto PDS refused or failed a request; names the PDS and the XRPC call.

    Raised by ``atdata.atmosphere`` and ``atdata.promote``. A failed promotion has
    published no dataset entry (a schema record alone may remain; it is reused).
    Never quotes a password or a session token.
    """


class AtmosphereAuthError(AtmosphereError, PermissionError):
    """Login refused (wrong handle or password), a session that expired or was revoked,
    or a write without ``login`` first."""


class AtmosphereUnavailable(AtmosphereError, ConnectionError):
    """The PDS cannot be reached (down, refused connection, timeout)."""


class RecordNotFound(AtmosphereError, LookupError):
    """No record exists at that AT-URI (or the repository is unknown)."""


class InvalidRecord(AtmosphereError, ValueError):
    """A record that does not validate against its lexicon: names the NSID and the path
    of the bad value. Checked before a record is written, and on records read."""


class StoreError(AtdataError):
    """The object store failed; the message names the URL and the cause.

    A failed write leaves nothing behind: shards written so far are deleted and open
    multipart uploads aborted before this is raised.
    """


class ObjectNotFound(StoreError, LookupError):
    """No object exists at that URL."""


class BucketNotFound(StoreError, LookupError):
    """The bucket does not exist (create it, or pass ``create_bucket=True``)."""


class AccessDenied(StoreError, PermissionError):
    """The store refused the credentials or the operation."""


class StoreUnavailable(StoreError, ConnectionError):
    """The store cannot be reached (server down, DNS, refused connection)."""


class CredentialsRefused(AccessDenied, CredentialsError):
    """The store refused the keys themselves (unknown access key, wrong secret).

    Both an :class:`AccessDenied` (the store said no) and a :class:`CredentialsError`
    (the fix is other keys): the message says where the keys came from and how to
    give the right ones, never the secret.
    """
