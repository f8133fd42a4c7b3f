"""atdata core in one screen: typed samples -> a WebDataset tar shard -> typed batches.

Run with ``uv run python examples/core_demo.py`` (``tools/quickstart`` runs it until the
complete Repo workflow example replaces it). Writes ``local-data.tar`` in the current
directory.
"""

import numpy as np
import webdataset as wds
from numpy.typing import NDArray

import atdata


@atdata.packable
class TrainingSample:
    features: NDArray
    label: int
    source: str


samples = [
    TrainingSample(features=np.random.randn(128).astype(np.float32), label=i % 10, source="synthetic")
    for i in range(10000)
]

with wds.writer.TarWriter("local-data.tar") as sink:
    for i, sample in enumerate(samples):
        sink.write({**sample.as_wds, "__key__": f"{i:06d}"})

dataset = atdata.Dataset[TrainingSample]("local-data.tar")
for batch in dataset.ordered(batch_size=32):
    print(batch.features.shape)  # (32, 128), and (16, 128) for the last batch
