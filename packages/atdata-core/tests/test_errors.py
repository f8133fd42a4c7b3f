"""The error tree: one base to catch, builtins mixed in where callers expect them."""

import inspect

import pytest

import atdata
from atdata import errors


def all_error_classes() -> list[type]:
    return [obj for _, obj in inspect.getmembers(errors, inspect.isclass) if obj.__module__ == errors.__name__]


def test_every_public_error_derives_from_atdata_error() -> None:
    classes = all_error_classes()
    assert set(errors.__all__) == {c.__name__ for c in classes}
    for cls in classes:
        assert issubclass(cls, errors.AtdataError), cls


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (errors.EntryNotFound, KeyError),
        (errors.InvalidSchemaRef, ValueError),
        (errors.SchemaNotFound, LookupError),
        (errors.CredentialsError, ValueError),
        (errors.IndexConnectionError, ConnectionError),
        (errors.StoreUnavailable, ConnectionError),
        (errors.AccessDenied, PermissionError),
        (errors.UnsupportedFieldType, TypeError),
        (errors.MissingField, TypeError),
        (errors.MissingField, errors.InvalidArgument),
        (errors.AtmosphereAuthError, PermissionError),
        (errors.AtmosphereUnavailable, ConnectionError),
        (errors.RecordNotFound, LookupError),
        (errors.InvalidRecord, ValueError),
    ],
)
def test_builtin_mixins_keep_existing_except_clauses_working(cls: type, builtin: type) -> None:
    with pytest.raises(builtin):
        raise cls("boom")


def test_entry_not_found_prints_its_message_unquoted() -> None:
    err = errors.EntryNotFound("no entry named 'x'")
    assert str(err) == "no entry named 'x'"


def test_errors_module_is_reachable_from_the_package() -> None:
    assert atdata.errors is errors
