"""Every documented import of atdata-ray works, and __all__ lists exactly those."""

from __future__ import annotations

import ray.data

import atdata.ray
from atdata.ray import RepoDatasink, RepoDatasource, read_dataset, write_dataset
from atdata.ray.cluster import DRIVER_ENV, LocalRayCluster, start_local_cluster


def test_documented_names() -> None:
    assert issubclass(RepoDatasink, ray.data.Datasink) and issubclass(RepoDatasource, ray.data.Datasource)
    assert callable(read_dataset) and callable(write_dataset) and callable(start_local_cluster)
    assert LocalRayCluster.__name__ == "LocalRayCluster"


def test_all_matches_public_names() -> None:
    public = {n for n in vars(atdata.ray) if not n.startswith("_") or n == "__version__"}
    assert set(atdata.ray.__all__) == public - {"cluster", "datasink", "datasource"}


def test_the_test_run_sets_the_driver_env() -> None:
    """The root conftest sets DRIVER_ENV before ray is imported; the fixture relies on it."""
    from ray._private import ray_constants

    assert not ray_constants.ENABLE_RAY_CLUSTER and not ray_constants.RAY_ENABLE_UV_RUN_RUNTIME_ENV
    import os

    assert all(os.environ.get(key) == value for key, value in DRIVER_ENV.items()) and os.environ["RAY_AUTH_TOKEN"]
