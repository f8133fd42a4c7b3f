"""The Complete Workflow Example of the local storage spec, exactly as written there.

Run it after `atdata local up` (Redis on localhost:6379, S3 on localhost:9000 with the
minioadmin keys): ``tools/quickstart`` does both. It writes ``local-data.tar`` into the
current directory, inserts it into the bucket ``datasets-bucket`` under ``training/``,
looks it up again by name and prints the shape of every batch it reads back.
"""

import numpy as np
import webdataset as wds
from numpy.typing import NDArray

import atdata
from atdata.local import LocalIndex, Repo


# 1. Define sample type
@atdata.packable
class TrainingSample:
    features: NDArray
    label: int
    source: str


# 2. Create samples
samples = [
    TrainingSample(
        features=np.random.randn(128).astype(np.float32),
        label=i % 10,
        source="synthetic",
    )
    for i in range(10000)
]

# 3. Write to local tar
with wds.writer.TarWriter("local-data.tar") as sink:
    for i, sample in enumerate(samples):
        sink.write({**sample.as_wds, "__key__": f"{i:06d}"})

# 4. Create repo and insert
repo = Repo(
    s3_credentials={
        "AWS_ENDPOINT": "http://localhost:9000",
        "AWS_ACCESS_KEY_ID": "minioadmin",
        "AWS_SECRET_ACCESS_KEY": "minioadmin",
    },
    hive_path="datasets-bucket/training",
)

local_ds = atdata.Dataset[TrainingSample]("local-data.tar")
entry, stored_ds = repo.insert(local_ds, name="training-v1")

# 5. Retrieve later
index = LocalIndex()
entry = index.get_entry_by_name("training-v1")
dataset = atdata.Dataset[TrainingSample](entry.data_urls[0])

for batch in dataset.ordered(batch_size=32):
    print(batch.features.shape)  # (32, 128)
