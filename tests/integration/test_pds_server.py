"""The test PDS fixture: the reference @atproto/pds, offline, on 127.0.0.1, CIDs as ours."""

from __future__ import annotations

import httpx
from atproto import Client, models
from multiformats import CID, multihash

from atdata.atmosphere.testing import PdsAccount, PdsServer
from atdata.cid import generate_cid


def test_pds_answers_on_localhost(pds_server: PdsServer) -> None:
    assert pds_server.url.startswith("http://127.0.0.1:")
    health = httpx.get(f"{pds_server.url}/xrpc/_health", timeout=10).json()
    assert health["version"] == "0.5.35"


def test_raw_sdk_record_and_blob_cids_equal_ours(pds_server: PdsServer, pds_account: PdsAccount) -> None:
    client = Client(base_url=pds_server.url)
    client.login(pds_account.handle, pds_account.password, fetch_bsky_profile=False)
    record = {
        "$type": "science.alt.dataset.label",
        "name": "x",
        "datasetUri": "at://did:plc:x/science.alt.dataset.entry/3k",
        "createdAt": "2026-01-01T00:00:00.000Z",
    }
    made = client.com.atproto.repo.create_record(
        models.ComAtprotoRepoCreateRecord.Data(
            repo=pds_account.did, collection="science.alt.dataset.label", record=record
        )
    )
    assert made.cid == generate_cid(record)
    data = bytes(range(256)) * 4
    blob = client.upload_blob(data).blob
    assert blob.ref.link == str(CID("base32", 1, "raw", multihash.digest(data, "sha2-256")))
    # The PDS serves a blob only once a record references it (unreferenced uploads are temporary).
    holder = {"$type": "x.atdata.test.holder", "blob": blob.model_dump(by_alias=True)}
    client.com.atproto.repo.create_record(
        models.ComAtprotoRepoCreateRecord.Data(repo=pds_account.did, collection="x.atdata.test.holder", record=holder)
    )
    fetched = client.com.atproto.sync.get_blob(
        models.ComAtprotoSyncGetBlob.Params(did=pds_account.did, cid=blob.ref.link)
    )
    assert fetched == data
