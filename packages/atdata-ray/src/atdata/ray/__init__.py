"""atdata.ray: a ``ray.data.Dataset`` written into a Repo as one entry, and an entry read back.

::

    import ray, atdata
    from atdata.local import Repo
    from atdata.ray import read_dataset, write_dataset

    ds = ray.data.read_images("s3://raw/images/").map(to_sample_fields)  # rows of ImageSample's fields
    entry, stored = write_dataset(ds, Repo(hive_path="my-bucket/datasets"), name="images-v1", sample_type=ImageSample)
    read_dataset(repo, "images-v1").iter_torch_batches(batch_size=32)

``RepoDatasink`` and ``RepoDatasource`` are the Ray Data ``Datasink``/``Datasource``
behind them; :mod:`atdata.ray.cluster` starts a local Ray cluster on 127.0.0.1.
"""

from ._api import read_dataset, write_dataset
from ._version import __version__
from .datasink import RepoDatasink
from .datasource import RepoDatasource

__all__ = ["RepoDatasink", "RepoDatasource", "__version__", "read_dataset", "write_dataset"]
