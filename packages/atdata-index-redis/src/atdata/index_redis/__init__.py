"""atdata.index_redis: a Redis-backed index of datasets (by CID and name) and sample schemas.

``LocalIndex`` implements core's ``atdata.AbstractIndex``; its entries,
``LocalDatasetEntry``, satisfy ``atdata.IndexEntry``; ``StoredContent`` is what a CID
stands for and the names pointing at it. ``atdata.local`` re-exports both.
"""

from ._entry import LocalDatasetEntry, StoredContent
from ._index import LocalIndex

__all__ = ["LocalDatasetEntry", "LocalIndex", "StoredContent"]
