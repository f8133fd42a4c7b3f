"""AT-URIs (``at://did:plc:abc/science.alt.dataset.entry/3kxyz``): parse and build."""

from __future__ import annotations

from dataclasses import dataclass

from atdata.errors import InvalidArgument

__all__ = ["AtUri"]


@dataclass(frozen=True)
class AtUri:
    """The three parts of a record's AT-URI: repo (DID or handle), collection (NSID), rkey."""

    repo: str
    collection: str
    rkey: str

    @classmethod
    def parse(cls, uri: str) -> AtUri:
        """Split ``at://repo/collection/rkey``.

        Raises
        ------
        InvalidArgument
            Not an AT-URI naming one record.
        """
        parts = uri[len("at://") :].split("/") if isinstance(uri, str) and uri.startswith("at://") else []
        if len(parts) != 3 or not all(parts):
            raise InvalidArgument(
                f"{uri!r} is not the AT-URI of a record: expected at://<did or handle>/<collection>/<rkey>, "
                "e.g. at://did:plc:abc123/science.alt.dataset.entry/3kxyz"
            )
        return cls(*parts)

    def __str__(self) -> str:
        return f"at://{self.repo}/{self.collection}/{self.rkey}"
