"""The rules for names users give: entry names, and the paths a hive's shard URLs start with.

One place, so ``Repo``, ``LocalIndex`` and the CLI refuse the same values with the same
words, up front, before anything is written.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from multiformats import CID

from .errors import InvalidArgument

__all__ = ["check_entry_name", "check_hive_path_chars"]

# Characters that change what a shard URL means: braces expand (webdataset brace notation),
# '?' and '#' end a URL's path, '[', ']' and '*' are glob patterns in listings and SCAN.
_URL_METACHARACTERS = frozenset("{}?#[]*\\")

#: The longest entry name, in UTF-8 bytes: the ``name`` of a ``science.alt.dataset.entry``
#: record (../lexicons) holds at most 200, so every local name can be promoted as it is.
MAX_ENTRY_NAME_BYTES = 200


def _control_characters(value: str) -> list[str]:
    # Cc: C0/C1 controls (newline, tab, NUL, ESC...); Zl/Zp: Unicode line and paragraph separators.
    return [ch for ch in value if unicodedata.category(ch) in ("Cc", "Zl", "Zp")]


def check_entry_name(name: Any) -> None:
    """Refuse a name that is not a non-empty string of at most 200 bytes of printable characters.

    A newline or an escape sequence in a name would break every listing (``atdata ls``
    rows, logs) and could not be typed back at a prompt to ``show`` or ``rm`` it.
    """
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgument(f"name={name!r} is invalid: an entry name is a non-empty string such as 'training-v1'")
    bad = _control_characters(name)
    if bad:
        raise InvalidArgument(
            f"name={name!r} holds control characters ({', '.join(repr(ch) for ch in dict.fromkeys(bad))}): "
            "entry names are printable text; use e.g. 'training-v1' or 'images/2024-06'"
        )
    size = len(name.encode("utf-8", "surrogatepass"))
    if size > MAX_ENTRY_NAME_BYTES:
        raise InvalidArgument(
            f"name={name[:40]!r}... is {size} bytes long: entry names hold at most {MAX_ENTRY_NAME_BYTES} "
            "bytes of UTF-8 (what an ATProto entry record allows, so the name survives promotion); "
            "keep long descriptions in metadata= instead"
        )
    if _is_cid(name):
        raise InvalidArgument(
            f"name={name!r} is a CID: lookups that take a name or a CID (`atdata show`, `atdata rm`, "
            "`atdata verify`) would take it for the content it names, so `atdata rm` could remove another "
            "dataset; use a name such as 'training-v1'"
        )


def _is_cid(text: str) -> bool:
    try:
        CID.decode(text)
    except Exception:  # noqa: BLE001 - multiformats raises several unrelated types: "not a CID"
        return False
    return True


def check_hive_path_chars(path: str, what: str = "hive_path") -> None:
    """Refuse a hive location whose characters would change the meaning of its shard URLs.

    The indexed URL of a dataset is ``{hive}/data--{id}--{{000000..000009}}.tar``: braces
    inside the hive part would expand too, ``?``/``#`` would cut the path, and gc's
    listing would not match what the entry names (so it would list live shards as garbage).
    """
    bad = sorted({ch for ch in path if ch in _URL_METACHARACTERS}) + _control_characters(path)
    if bad:
        raise InvalidArgument(
            f"{what}={path!r} holds {', '.join(repr(ch) for ch in dict.fromkeys(bad))}, which would change "
            "the meaning of the shard URLs stored under it (braces expand, '?' and '#' end a URL path, "
            "'[', ']', '*' are patterns): use letters, digits and '-', '_', '.', '/' such as 'my-bucket/datasets/v1'"
        )
