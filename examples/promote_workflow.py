"""Promote a local dataset to ATProto and read it back from the PDS, as another user would.

Run it with ``tools/promote_workflow``, which starts the local Redis and S3 (``atdata local
up``) and the local test PDS (``tools/pds/start``). By hand, it reads:

- ``ATDATA_PDS_URL`` (default ``http://127.0.0.1:2583``) and ``ATDATA_PDS_HANDLE`` /
  ``ATDATA_PDS_PASSWORD``; without a handle it creates a throwaway ``*.test`` account
  (a dev-mode PDS needs no invite);
- ``ATDATA_REDIS_URL`` and ``AWS_ENDPOINT`` / ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``
  (default: the servers of ``atdata local up``).
"""

import os
import secrets

import numpy as np
from numpy.typing import NDArray

import atdata
from atdata.atmosphere import AtmosphereClient, AtmosphereIndex
from atdata.local import Repo
from atdata.promote import promote_to_atmosphere

PDS = os.environ.get("ATDATA_PDS_URL", "http://127.0.0.1:2583")
S3 = {
    "AWS_ENDPOINT": os.environ.get("AWS_ENDPOINT", "http://localhost:9000"),
    "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "minioadmin"),
    "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "minioadmin"),
}


@atdata.packable
class ImageSample:
    image: NDArray
    label: str


def account() -> tuple[str, str]:
    """The account to publish as: from the environment, else a new one on the dev PDS."""
    if os.environ.get("ATDATA_PDS_HANDLE"):
        return os.environ["ATDATA_PDS_HANDLE"], os.environ["ATDATA_PDS_PASSWORD"]
    from atdata.atmosphere.testing import create_account

    made = create_account(PDS, password=secrets.token_urlsafe(12))
    return made.handle, made.password


# 1. A local dataset: 200 samples in 4 shards, inserted into S3 and indexed in Redis.
samples = [ImageSample(image=np.full((8, 8), i, dtype=np.uint8), label=f"img-{i}") for i in range(200)]
urls = atdata.write_samples(samples, "promote-data-%06d.tar", maxcount=50)
repo = Repo(s3_credentials=S3, hive_path=f"promote-demo-{secrets.token_hex(4)}/images")
entry, _ = repo.insert(atdata.Dataset[ImageSample](urls), name="demo-images", maxcount=50)
print(f"local:    {entry.name} {entry.cid} ({len(entry.data_urls)} URL)")

# 2. Promote it twice: keeping its S3 URLs, and as PDS blobs.
handle, password = account()
client = AtmosphereClient(base_url=PDS)
client.login(handle, password)
kept = promote_to_atmosphere(entry, repo.index, client, description="Demo images", tags=["images"], license="MIT")
blobs = promote_to_atmosphere(entry, repo.index, client, data_store="blobs")
assert promote_to_atmosphere(entry, repo.index, client) == kept  # repeatable: same AT-URI
print(f"s3 urls:  {kept}")
print(f"as blobs: {blobs}")

# 3. Read both back without logging in, as anyone could, and compare with the originals.
index = AtmosphereIndex(AtmosphereClient(base_url=PDS), repo=handle)
for uri in (kept, blobs):
    published = index.get_entry(uri)
    SampleType = index.decode_schema(published.schema_ref)
    read = list(atdata.Dataset[SampleType](published.data_urls).ordered())
    assert published.cid == entry.cid  # the local CID holds across the move
    assert [s.label for s in read] == [s.label for s in samples]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(read, samples, strict=True))
    print(f"read back {len(read)} samples from {published.storage['$type'].rpartition('.')[2]}")
