"""atdata: typed ML samples in WebDataset tar shards, read back as typed batches.

``import atdata`` gives the whole user API of the core distribution::

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

from . import cid, errors, schema
from ._version import __version__
from .batch import SampleBatch
from .dataset import Dataset
from .openers import open_url, register_opener
from .protocols import AbstractDataStore, AbstractIndex, IndexEntry
from .sample import DictSample, PackableSample, packable
from .writing import write_samples

__all__ = [
    "AbstractDataStore",
    "AbstractIndex",
    "Dataset",
    "DictSample",
    "IndexEntry",
    "PackableSample",
    "SampleBatch",
    "__version__",
    "cid",
    "errors",
    "open_url",
    "packable",
    "register_opener",
    "schema",
    "write_samples",
]

# Libraries log, applications configure: never print "No handlers could be found".
logging.getLogger(__name__).addHandler(logging.NullHandler())
