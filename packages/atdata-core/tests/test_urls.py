"""Brace patterns: valid ranges and lists expand, a broken range fails when the dataset is built."""

from __future__ import annotations

from pathlib import Path

import pytest

import atdata
from atdata.errors import UnsupportedURL
from atdata.urls import expand_urls


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("d-{000..002}.tar", ["d-000.tar", "d-001.tar", "d-002.tar"]),
        ("d-{0..4..2}.tar", ["d-0.tar", "d-2.tar", "d-4.tar"]),
        ("d-{a..b}-{x,y}.tar", ["d-a-x.tar", "d-a-y.tar", "d-b-x.tar", "d-b-y.tar"]),
        ("d-{x}.tar", ["d-{x}.tar"]),  # no "..": a literal brace in a file name stays literal
        ("d-{}.tar", ["d-{}.tar"]),
        (r"d-\{1..\}.tar", ["d-{1..}.tar"]),  # escaped braces are literal
        ("d-{1..2,5}.tar", ["d-1..2.tar", "d-5.tar"]),  # a list item may hold ".."
    ],
)
def test_valid_patterns_expand(pattern: str, expected: list[str]) -> None:
    assert expand_urls(pattern) == expected


@pytest.mark.parametrize("group", ["{000..}", "{..}", "{1...3}", "{000..abc}", "{a..9}", "{0..9..}"])
def test_a_broken_range_names_the_url_and_the_brace_forms(tmp_path: Path, group: str) -> None:
    url = str(tmp_path / f"a-{group}.tar")
    with pytest.raises(UnsupportedURL) as info:
        atdata.Dataset(url)
    message = str(info.value)
    assert f"malformed brace range {group} in dataset URL {url!r}" in message
    assert "{first..last}" in message and "'data-{000000..000009}.tar'" in message and "{train,val}" in message
    assert isinstance(info.value, ValueError)
