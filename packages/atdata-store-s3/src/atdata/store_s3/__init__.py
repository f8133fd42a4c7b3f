"""atdata.store_s3: ``S3DataStore`` and the ``s3://`` opener, on boto3.

Importing this package registers the ``s3`` scheme with core, so
``atdata.Dataset[T]("s3://bucket/data-{000000..000009}.tar")`` streams shards::

    from atdata.store_s3 import S3DataStore

    store = S3DataStore(credentials="path/to/.env", bucket="my-bucket")
    urls = store.write_shards(dataset, prefix="datasets/v1", maxcount=10000)
"""

from atdata.openers import register_opener as _register_opener

from ._credentials import S3Credentials, load_credentials
from ._version import __version__
from .reading import configure, read_url
from .store import S3DataStore

__all__ = ["S3Credentials", "S3DataStore", "__version__", "configure", "load_credentials", "read_url"]

_register_opener("s3", read_url)
