"""Reading a ``.env`` credentials file as people write them.

Accepted, line by line (the conventions of docker's and python-dotenv's ``.env``)::

    # a comment line
    export AWS_ACCESS_KEY_ID=minioadmin        # optional `export `, a trailing comment
    AWS_SECRET_ACCESS_KEY="s3cr#t"             # quoted values keep '#' and spaces
    AWS_REGION = eu-west-1                     # spaces around '='

A UTF-8 byte-order mark (Windows editors write one) and CRLF line ends are accepted.
In an unquoted value, ``#`` starts a comment only after whitespace, so a secret holding
``#`` stays whole. Errors name the file and a line number, never the line's text: a
malformed line may be a secret missing its ``KEY=``.
"""

from __future__ import annotations

import re
from pathlib import Path

from atdata.errors import CredentialsError

__all__ = ["read_env_file"]

_LINE = re.compile(r"(?:export\s+)?(?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?P<value>.*)")
_COMMENT = re.compile(r"\s#.*$")


def read_env_file(path: Path) -> dict[str, str]:
    """The ``KEY=VALUE`` pairs of ``path`` (a later line wins over an earlier one).

    Raises
    ------
    CredentialsError
        The file is missing or unreadable, or a line is not ``KEY=VALUE``; the message
        names the file (and the line number).
    """
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: drops a leading BOM
    except FileNotFoundError:
        raise CredentialsError(
            f"credentials file {str(path)!r} does not exist: create it with AWS_ENDPOINT, "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY lines, or pass a dict"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialsError(f"cannot read credentials file {str(path)!r}: {type(exc).__name__}") from None
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):  # splitlines: \n, \r\n and \r
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            raise CredentialsError(f"credentials file {str(path)!r}, line {number}: expected KEY=VALUE")
        values[match["key"]] = _value(match["value"], path, number)
    return values


def _value(text: str, path: Path, number: int) -> str:
    """The value part of a line: unquoted (a `` #`` comment cut off) or quoted."""
    if not text or text[0] not in "\"'":
        return _COMMENT.sub("", text).strip()
    quote = text[0]
    end = text.find(quote, 1)
    if end < 0:
        raise CredentialsError(
            f"credentials file {str(path)!r}, line {number}: the value's {quote} quote is never closed"
        )
    rest = text[end + 1 :].strip()
    if rest and not rest.startswith("#"):
        raise CredentialsError(
            f"credentials file {str(path)!r}, line {number}: text after the closing {quote} quote "
            "(only a '# comment' may follow it)"
        )
    return text[1:end]
