"""atdata.atmosphere: datasets on ATProto, read from and written to a PDS.

``AtmosphereClient`` is one PDS session; ``AtmosphereIndex`` lists and gets the dataset
entries and schemas of a repo (an ``atdata.AbstractIndex``); publishing goes through
``atdata.promote.promote_to_atmosphere``. Importing this package registers the
``http``/``https`` opener that reads PDS blob shards (checksums verified)::

    from atdata.atmosphere import AtmosphereClient, AtmosphereIndex

    client = AtmosphereClient(base_url="http://127.0.0.1:2583")
    client.login("alice.test", "app-password")
    index = AtmosphereIndex(client)
    entry = index.get_entry(at_uri)
    T = index.decode_schema(entry.schema_ref)
"""

from atdata.openers import register_opener as _register_opener

from ._version import __version__
from .client import DEFAULT_PDS, AtmosphereClient
from .index import AtmosphereIndex
from .lexicon import validate_record
from .reading import read_http, verify_shards
from .records import AtmosphereEntry, Shard, record_cid
from .uri import AtUri

__all__ = [
    "DEFAULT_PDS",
    "AtUri",
    "AtmosphereClient",
    "AtmosphereEntry",
    "AtmosphereIndex",
    "Shard",
    "__version__",
    "read_http",
    "record_cid",
    "validate_record",
    "verify_shards",
]

_register_opener("http", read_http)
_register_opener("https", read_http)
