"""atdata.local: the local tier, assembled: ``Repo``, the ``atdata`` command, embedded servers.

Installing atdata-local installs everything (core, the Redis index, the S3 store);
importing it registers the ``s3://`` opener, so ``entry.data_urls`` read directly::

    from atdata.local import Repo, LocalIndex

    repo = Repo(s3_credentials="path/to/.env", hive_path="my-bucket/datasets")
    entry, stored = repo.insert(atdata.Dataset[TrainingSample]("local-data.tar"), name="training-v1")
    LocalIndex().get_entry_by_name("training-v1").data_urls
"""

from atdata.index_redis import LocalDatasetEntry, LocalIndex
from atdata.store_s3 import S3DataStore

from ._version import __version__
from .repo import GcReport, PendingInsert, Repo, ShardCheck, VerifyReport

__all__ = [
    "GcReport",
    "LocalDatasetEntry",
    "LocalIndex",
    "PendingInsert",
    "Repo",
    "S3DataStore",
    "ShardCheck",
    "VerifyReport",
    "__version__",
]
