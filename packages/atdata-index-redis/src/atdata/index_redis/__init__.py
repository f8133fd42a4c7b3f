"""atdata.index_redis: a Redis-backed index of datasets (by CID and name) and sample schemas.

``LocalIndex`` implements core's ``atdata.AbstractIndex``; its entries,
``LocalDatasetEntry``, satisfy ``atdata.IndexEntry``. ``atdata.local`` re-exports both.
"""

from ._entry import LocalDatasetEntry
from ._index import LocalIndex

__all__ = ["LocalDatasetEntry", "LocalIndex"]
