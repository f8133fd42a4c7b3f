"""What the client and index refuse before any request: bad URLs, writes without login."""

from __future__ import annotations

import pytest

from atdata.atmosphere import AtmosphereClient, AtmosphereIndex, AtUri
from atdata.atmosphere.schemas import schema_rkey
from atdata.errors import AtmosphereAuthError, InvalidArgument


def test_base_url_must_be_http() -> None:
    with pytest.raises(InvalidArgument, match="not an http"):
        AtmosphereClient("localhost:2583")


def test_writes_and_session_export_need_a_login() -> None:
    client = AtmosphereClient("http://127.0.0.1:9")
    for call in (
        client.export_session,
        lambda: client.create_record("a.b.c", {}),
        lambda: client.upload_blob(b"", "x"),
    ):
        with pytest.raises(AtmosphereAuthError, match="not logged in"):
            call()
    with pytest.raises(InvalidArgument, match="repo="):
        AtmosphereIndex(client)
    with pytest.raises(InvalidArgument, match="export_session"):
        client.login_with_session("not-a-session")
    with pytest.raises(InvalidArgument, match="handle and a password"):
        client.login("alice.test", "")
    assert "password" not in repr(client)


def test_at_uris() -> None:
    uri = AtUri.parse("at://did:plc:abc/science.alt.dataset.entry/3kxyz")
    assert (uri.repo, uri.collection, uri.rkey) == ("did:plc:abc", "science.alt.dataset.entry", "3kxyz")
    assert str(uri) == "at://did:plc:abc/science.alt.dataset.entry/3kxyz"
    with pytest.raises(InvalidArgument, match="at://<did or handle>/<collection>/<rkey>"):
        AtUri.parse("at://did:plc:abc/only-collection")


def test_schema_record_keys_are_valid_rkeys() -> None:
    assert schema_rkey("mymodule.ImageSample", "1.0.0+build.5") == "mymodule.ImageSample:1.0.0~build.5"
    with pytest.raises(InvalidArgument, match="record key"):
        schema_rkey("modül.Sample", "1.0.0")
