"""Credentials: .env file, dict, environment; errors name file and key, never the secret."""

from __future__ import annotations

import logging
import pickle
import warnings
from pathlib import Path

import pytest

from atdata.errors import CredentialsError, StoreUnavailable
from atdata.store_s3 import S3DataStore, load_credentials

SECRET = "s3cr3t-VALUE-never-shown"


def write_env(tmp_path: Path, text: str) -> Path:
    path = tmp_path / ".env"
    path.write_text(text)
    return path


def test_env_file_as_in_the_spec(tmp_path: Path) -> None:
    path = write_env(
        tmp_path,
        "# local server\nAWS_ENDPOINT=http://localhost:9000\nexport AWS_ACCESS_KEY_ID=minioadmin\n"
        f'AWS_SECRET_ACCESS_KEY="{SECRET}"\n\nAWS_REGION = eu-west-1\n',
    )
    creds = load_credentials(path)
    assert (creds.endpoint_url, creds.access_key_id, creds.secret_access_key, creds.region) == (
        "http://localhost:9000",
        "minioadmin",
        SECRET,
        "eu-west-1",
    )
    assert creds.source == f"file {path}"


def test_dict_without_endpoint_means_aws() -> None:
    creds = load_credentials({"AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": SECRET})
    assert creds.endpoint_url is None
    assert creds.client_kwargs()["region_name"] is None  # boto3's own region chain


def test_endpoint_without_region_gets_a_signing_region() -> None:
    creds = load_credentials(
        {"AWS_ENDPOINT": "http://127.0.0.1:1", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}
    )
    assert creds.client_kwargs()["region_name"] == "us-east-1"


def test_missing_file_named(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match=r"missing\.env.*does not exist"):
        load_credentials(tmp_path / "missing.env")


@pytest.mark.parametrize("absent", ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"])
def test_missing_key_named_with_file_and_no_secret(tmp_path: Path, absent: str) -> None:
    lines = {"AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": SECRET}
    del lines[absent]
    path = write_env(tmp_path, "".join(f"{k}={v}\n" for k, v in lines.items()))
    with pytest.raises(CredentialsError) as info:
        load_credentials(path)
    assert absent in str(info.value) and str(path) in str(info.value)
    assert SECRET not in str(info.value)


def test_malformed_line_reported_by_number_only(tmp_path: Path) -> None:
    path = write_env(tmp_path, f"AWS_ACCESS_KEY_ID=a\n{SECRET}\n")
    with pytest.raises(CredentialsError, match="line 2") as info:
        load_credentials(path)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    ("creds", "match"),
    [
        ({"AWS_ACCESS_KEY_ID": "a"}, "no AWS_SECRET_ACCESS_KEY"),
        ({"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": ""}, "AWS_SECRET_ACCESS_KEY is empty"),
        ({"AWS_ACCESS_KEY_ID": 1, "AWS_SECRET_ACCESS_KEY": "x"}, "AWS_ACCESS_KEY_ID must be a string"),
        (42, "not supported"),
    ],
)
def test_bad_dicts(creds: object, match: str) -> None:
    with pytest.raises(CredentialsError, match=match):
        load_credentials(creds)  # type: ignore[arg-type]


@pytest.mark.parametrize("endpoint", ["localhost:9000", "not a url", "ftp://h:1", "http://"])
def test_endpoint_that_is_not_an_http_url_is_named(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    with pytest.raises(CredentialsError, match=r"AWS_ENDPOINT=.*http://localhost:9000") as info:
        load_credentials({"AWS_ENDPOINT": endpoint, "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": SECRET})
    assert repr(endpoint) in str(info.value) and SECRET not in str(info.value)
    monkeypatch.setenv("AWS_ENDPOINT", endpoint)
    with pytest.raises(CredentialsError, match="AWS_ENDPOINT"):
        load_credentials(None)


def test_environment_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT", "http://127.0.0.1:9999")
    creds = load_credentials(None)
    assert creds.endpoint_url == "http://127.0.0.1:9999" and creds.access_key_id is None


def test_secret_never_in_repr_logs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="atdata")
    store = S3DataStore(
        {"AWS_ENDPOINT": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": SECRET},
        "bucket",
    )
    assert SECRET not in repr(store) and SECRET not in repr(store.credentials)
    with pytest.raises(StoreUnavailable, match="s3://bucket") as info:  # nothing listens on port 9
        store.write_bytes("k", b"v")
    assert SECRET not in str(info.value) and SECRET not in caplog.text


def test_pickles_parameters_and_rereads_the_file(tmp_path: Path) -> None:
    path = write_env(tmp_path, f"AWS_ACCESS_KEY_ID=AKIA\nAWS_SECRET_ACCESS_KEY={SECRET}\n")
    store = S3DataStore(path, "bucket")
    clone = pickle.loads(pickle.dumps(store))
    assert clone == store and clone.credentials.secret_access_key == SECRET
    assert SECRET.encode() not in pickle.dumps(store)  # the path travels, not the secret


# -- files as people write them ------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        # trailing comments, after unquoted and quoted values; '#' inside a value stays
        "AWS_ENDPOINT=http://localhost:9000   # the local server\n"
        "AWS_ACCESS_KEY_ID=AKIA#1 # the key\n"
        f"AWS_SECRET_ACCESS_KEY='{SECRET} #kept' # comment\n",
        # export, double quotes, tabs
        'export AWS_ENDPOINT="http://localhost:9000"\nexport\tAWS_ACCESS_KEY_ID=AKIA#1\n'
        f'export AWS_SECRET_ACCESS_KEY="{SECRET} #kept"\n',
        # Windows: a byte-order mark and CRLF line ends
        "\ufeffAWS_ENDPOINT=http://localhost:9000\r\nAWS_ACCESS_KEY_ID=AKIA#1\r\n"
        f"AWS_SECRET_ACCESS_KEY='{SECRET} #kept'  # comment\r\n",
        # boto3's name for the endpoint
        f"AWS_ENDPOINT_URL=http://localhost:9000\nAWS_ACCESS_KEY_ID=AKIA#1\nAWS_SECRET_ACCESS_KEY='{SECRET} #kept'\n",
    ],
    ids=["comments", "export-quotes", "bom-crlf", "endpoint-url-alias"],
)
def test_files_as_people_write_them(tmp_path: Path, text: str) -> None:
    path = tmp_path / ".env"
    path.write_bytes(text.encode("utf-8"))  # bytes: keep \r\n and the BOM as written
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none of these keys is unknown
        creds = load_credentials(path)
    assert creds.endpoint_url == "http://localhost:9000"
    assert creds.access_key_id == "AKIA#1"
    assert creds.secret_access_key == f"{SECRET} #kept"


def test_unknown_key_warns_naming_the_file_and_a_close_match(tmp_path: Path) -> None:
    path = write_env(tmp_path, f"AWS_ACCESS_KEY_ID=AKIA\nAWS_SECRET_ACCESS_KEY={SECRET}\nAWS_SESSON_TOKEN=x\n")
    with pytest.warns(UserWarning, match="AWS_SESSON_TOKEN.*did you mean AWS_SESSION_TOKEN") as record:
        load_credentials(path)
    assert str(path) in str(record[0].message) and SECRET not in str(record[0].message)
    with pytest.warns(UserWarning, match="credentials dict: ignoring unknown key HOST"):
        load_credentials({"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b", "HOST": "x"})


def test_endpoint_and_its_alias_disagreeing_is_an_error_naming_both(tmp_path: Path) -> None:
    path = write_env(
        tmp_path,
        "AWS_ENDPOINT=http://a:1\nAWS_ENDPOINT_URL=http://b:2\nAWS_ACCESS_KEY_ID=a\nAWS_SECRET_ACCESS_KEY=b\n",
    )
    with pytest.raises(CredentialsError, match=r"\.env.*AWS_ENDPOINT='http://a:1' and AWS_ENDPOINT_URL='http://b:2'"):
        load_credentials(path)


def test_environment_accepts_boto3s_endpoint_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9998")
    assert load_credentials(None).endpoint_url == "http://127.0.0.1:9998"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (f'AWS_ACCESS_KEY_ID=a\nAWS_SECRET_ACCESS_KEY="{SECRET}\n', "line 2: the value's \" quote is never closed"),
        (f"AWS_ACCESS_KEY_ID=a\nAWS_SECRET_ACCESS_KEY='{SECRET}' x\n", "line 2: text after the closing ' quote"),
        (f"AWS_ACCESS_KEY_ID=a\nAWS_REGION=x\n{SECRET}=\n", "line 3: expected KEY=VALUE"),
    ],
)
def test_bad_lines_name_the_file_and_line_never_the_text(tmp_path: Path, text: str, match: str) -> None:
    path = write_env(tmp_path, text)
    with pytest.raises(CredentialsError, match=match) as info:
        load_credentials(path)
    assert str(path) in str(info.value) and SECRET not in str(info.value)


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_bytes(b"AWS_ACCESS_KEY_ID=\xff\xfe\n")
    with pytest.raises(CredentialsError, match=r"cannot read credentials file .*\.env.*UnicodeDecodeError"):
        load_credentials(path)
