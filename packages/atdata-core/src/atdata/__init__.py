"""atdata: typed ML samples in WebDataset tar shards, read back as typed batches.

``import atdata`` gives the whole user API of the core distribution (everything in
``__all__``; the modules behind it, ``atdata.dataset``, ``atdata.sample``... export the
same objects, and modules whose name starts with ``_`` are private)::

    @atdata.packable
    class ImageSample:
        image: NDArray
        label: str

    for batch in atdata.Dataset[ImageSample]("data-{000000..000009}.tar").ordered(batch_size=32):
        batch.image.shape  # (32, ...)

Add-on distributions (atdata-index-redis, atdata-store-s3, atdata-local) install
subpackages of this same package (``atdata.index_redis``, ``atdata.store_s3``,
``atdata.local``); core never imports them.
"""

# Let add-on distributions installed in other sys.path entries (editable installs)
# contribute subpackages to this package. Must run before anything else.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)

import logging

from . import cid, errors, manifest, names, npy, schema, server_record
from ._version import __version__
from .batch import SampleBatch
from .dataset import Dataset, Loader, merge_state_dicts
from .disk_store import DiskDataStore
from .openers import ENTRY_POINT_GROUP, Opener, local_path, open_url, register_opener, registered_schemes
from .protocols import (
    AbstractDataStore,
    AbstractIndex,
    DatasetLike,
    IndexEntry,
    ObjectInfo,
    SampleSource,
    ShardSink,
    WrittenShard,
)
from .sample import DictSample, FieldSpec, PackableSample, decoder_of, fields_of, new_key, packable, unpack
from .shard_url import ShardURL, StorageLocation
from .staging import InsertKeys, StagedInsert
from .urls import expand_urls
from .writing import AtomicFileSink, ShardInfo, ShardWriter, check_limits, sample_record, write_samples

__all__ = [
    "ENTRY_POINT_GROUP",
    "AbstractDataStore",
    "AbstractIndex",
    "AtomicFileSink",
    "Dataset",
    "DatasetLike",
    "DictSample",
    "DiskDataStore",
    "FieldSpec",
    "IndexEntry",
    "InsertKeys",
    "Loader",
    "ObjectInfo",
    "Opener",
    "PackableSample",
    "SampleBatch",
    "SampleSource",
    "ShardInfo",
    "ShardSink",
    "ShardURL",
    "ShardWriter",
    "StagedInsert",
    "StorageLocation",
    "WrittenShard",
    "__version__",
    "check_limits",
    "cid",
    "decoder_of",
    "errors",
    "expand_urls",
    "fields_of",
    "local_path",
    "manifest",
    "merge_state_dicts",
    "names",
    "new_key",
    "npy",
    "open_url",
    "packable",
    "register_opener",
    "registered_schemes",
    "sample_record",
    "schema",
    "server_record",
    "unpack",
    "write_samples",
]

# Libraries log, applications configure: never print "No handlers could be found".
logging.getLogger(__name__).addHandler(logging.NullHandler())
