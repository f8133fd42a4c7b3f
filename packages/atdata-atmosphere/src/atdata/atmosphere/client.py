"""``AtmosphereClient``: one PDS session and the few XRPC calls atdata needs, on the atproto SDK.

The SDK (MarshalX's ``atproto``) keeps the session: login, the access/refresh token pair,
refreshing an expired access token before a call. Calls go through its low-level
``invoke_query``/``invoke_procedure`` with plain JSON, so records come back exactly as
the PDS stores them (no model classes for lexicons the SDK does not know), which is
what CIDs are computed over. Every SDK or transport error becomes an ``atdata.errors``
type naming the PDS and the call; passwords and tokens never appear in a message or a
repr.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

from atproto import Client, Session
from atproto_client import exceptions as sdk
from atproto_client.models.dot_dict import DotDict

from atdata.errors import (
    AtmosphereAuthError,
    AtmosphereError,
    AtmosphereUnavailable,
    InvalidArgument,
    RecordNotFound,
)

from .uri import AtUri

__all__ = ["DEFAULT_PDS", "AtmosphereClient"]

log = logging.getLogger(__name__)

#: Where ``AtmosphereClient()`` connects by default.
DEFAULT_PDS = "https://bsky.social"

_AUTH_ERRORS = {"ExpiredToken", "InvalidToken", "AuthenticationRequired", "AuthMissing", "AccountTakedown"}
_NOT_FOUND = {"RecordNotFound", "RepoNotFound", "BlobNotFound", "InvalidRequest:Could not locate record"}
_LIST_PAGE = 100


class AtmosphereClient:
    """A connection to one PDS, logged in or not (reads of public records need no login).

    Parameters
    ----------
    base_url
        The PDS (or entryway) URL, e.g. ``"http://127.0.0.1:2583"``; default bsky.social.
        After login the SDK may switch to the account's own PDS (from its DID document).
    """

    def __init__(self, base_url: str = DEFAULT_PDS) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise InvalidArgument(f"base_url={base_url!r} is not an http(s) URL such as 'https://bsky.social'")
        self._base_url = base_url.rstrip("/")
        self._sdk = Client(base_url=self._base_url)
        self._session: Session | None = None

    def __repr__(self) -> str:
        who = f", handle={self._session.handle!r}" if self._session else ""
        return f"AtmosphereClient({self._base_url!r}{who})"

    # -- session ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def did(self) -> str | None:
        """The logged-in account's DID (None before login)."""
        return self._session.did if self._session else None

    @property
    def handle(self) -> str | None:
        return self._session.handle if self._session else None

    def login(self, handle: str, password: str) -> None:
        """Log in with a handle (or DID / email) and an (app) password.

        Raises
        ------
        AtmosphereAuthError
            Wrong handle or password (the password is never quoted).
        AtmosphereUnavailable
            The PDS cannot be reached.
        """
        if not handle or not password:
            raise InvalidArgument("login needs a handle and a password (neither may be empty)")
        with self._errors("com.atproto.server.createSession"):
            self._sdk.update_base_url(self._base_url)  # each login starts where the user pointed
            self._sdk.login(handle, password, fetch_bsky_profile=False)
        self._session = Session.decode(self._sdk.export_session_string())
        log.info("logged in to %s as %s (%s)", self._base_url, self.handle, self.did)

    def login_with_session(self, session: str) -> None:
        """Resume a session exported by :meth:`export_session` (no password needed)."""
        if not isinstance(session, str) or session.count(":::") < 3:
            raise InvalidArgument("login_with_session takes the string export_session() returned")
        with self._errors("com.atproto.server.getSession"):
            self._sdk.login(session_string=session, fetch_bsky_profile=False)
            self._sdk.com.atproto.server.get_session()  # proves the session is still valid
        self._session = Session.decode(self._sdk.export_session_string())

    def export_session(self) -> str:
        """The session as a string for :meth:`login_with_session` (a secret: store it like a password)."""
        self.require_login()
        return str(self._sdk.export_session_string())

    def require_login(self) -> str:
        """The logged-in DID, or ``AtmosphereAuthError`` saying to log in first."""
        if self._session is None:
            raise AtmosphereAuthError(f"not logged in to {self._base_url}: call client.login(handle, password) first")
        return self._session.did

    # -- XRPC ------------------------------------------------------------------------

    def resolve_did(self, actor: str) -> str:
        """The DID of ``actor`` (a DID is returned as is; a handle is resolved by the PDS)."""
        if actor.startswith("did:"):
            return actor
        answer = self._query("com.atproto.identity.resolveHandle", {"handle": actor})
        return str(answer["did"])

    def create_record(self, collection: str, record: dict[str, Any], rkey: str | None = None) -> tuple[str, str]:
        """Write a new record in the logged-in repo; returns ``(at_uri, cid)``.

        Raises ``AtmosphereError`` if ``rkey`` is taken (records are never overwritten here).
        """
        body: dict[str, Any] = {"repo": self.require_login(), "collection": collection, "record": record}
        if rkey is not None:
            body["rkey"] = rkey
        answer = self._procedure("com.atproto.repo.createRecord", body)
        return str(answer["uri"]), str(answer["cid"])

    def delete_record(self, uri: str) -> None:
        """Delete the record at ``uri`` (in the logged-in repo); a missing record is fine."""
        at = AtUri.parse(uri)
        self._procedure(
            "com.atproto.repo.deleteRecord",
            {"repo": self.require_login(), "collection": at.collection, "rkey": at.rkey},
        )

    def get_record(self, uri: str) -> tuple[dict[str, Any], str]:
        """``(record, cid)`` at ``uri``; raises ``RecordNotFound``."""
        at = AtUri.parse(uri)
        answer = self._query(
            "com.atproto.repo.getRecord", {"repo": at.repo, "collection": at.collection, "rkey": at.rkey}
        )
        return dict(answer["value"]), str(answer["cid"])

    def list_records(self, repo: str, collection: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """Every record of ``collection`` in ``repo`` as ``(uri, cid, record)``, page by page."""
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"repo": repo, "collection": collection, "limit": _LIST_PAGE}
            if cursor:
                params["cursor"] = cursor
            answer = self._query("com.atproto.repo.listRecords", params)
            for item in answer.get("records", []):
                yield str(item["uri"]), str(item["cid"]), dict(item["value"])
            cursor = answer.get("cursor")
            if not cursor or not answer.get("records"):
                return

    def upload_blob(self, data: bytes, mime_type: str) -> dict[str, Any]:
        """Upload ``data``; returns its blob ref (JSON form) for a record to reference.

        A blob no record references is discarded by the PDS after a while, so an
        upload whose record never gets written leaves nothing behind.
        """
        self.require_login()
        with self._errors("com.atproto.repo.uploadBlob"):
            response = self._sdk.invoke_procedure(
                "com.atproto.repo.uploadBlob", content=data, headers={"Content-Type": mime_type}
            )
        return dict(_json(response)["blob"])

    def get_blob(self, did: str, cid: str) -> bytes:
        """The bytes of blob ``cid`` in ``did``'s repo (``com.atproto.sync.getBlob``)."""
        with self._errors("com.atproto.sync.getBlob"):
            response = self._sdk.invoke_query("com.atproto.sync.getBlob", params=DotDict({"did": did, "cid": cid}))
        return bytes(response.content)

    def blob_url(self, did: str, cid: str) -> str:
        """The plain HTTP URL of a blob (what dataset URLs of blob storage are)."""
        return f"{self._base_url}/xrpc/com.atproto.sync.getBlob?did={did}&cid={cid}"

    # -- plumbing ----------------------------------------------------------------------

    def _query(self, nsid: str, params: dict[str, Any]) -> dict[str, Any]:
        with self._errors(nsid):
            return _json(self._sdk.invoke_query(nsid, params=DotDict(params)))

    def _procedure(self, nsid: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._errors(nsid):
            response = self._sdk.invoke_procedure(
                nsid, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
            )
        return _json(response)

    def _errors(self, nsid: str) -> _TranslateErrors:
        return _TranslateErrors(self._base_url, nsid)


def _json(response: Any) -> dict[str, Any]:
    content = response.content
    if isinstance(content, (bytes, bytearray)):
        return dict(json.loads(content)) if content else {}
    return dict(content or {})


class _TranslateErrors:
    """Turns SDK and transport errors of one call into ``atdata.errors`` types."""

    def __init__(self, base_url: str, nsid: str) -> None:
        self.where = f"{nsid} on {base_url}"

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if exc is None or isinstance(exc, AtmosphereError) or not isinstance(exc, Exception):
            return
        raise _translate(exc, self.where) from exc


def _translate(exc: Exception, where: str) -> AtmosphereError:
    if isinstance(exc, sdk.LoginRequiredError):
        return AtmosphereAuthError(f"{where}: not logged in (call client.login first)")
    response = getattr(exc, "response", None)
    if response is None and isinstance(exc, (sdk.NetworkError, sdk.RequestErrorBase)):
        return AtmosphereUnavailable(f"{where}: the PDS cannot be reached ({type(exc.__cause__ or exc).__name__})")
    if response is None:
        return AtmosphereError(f"{where} failed: {type(exc).__name__}: {exc}")
    content = response.content
    error = getattr(content, "error", None) or ""
    message = getattr(content, "message", None) or ""
    detail = f"{response.status_code} {error}: {message}".strip()
    if isinstance(exc, sdk.UnauthorizedError) or error in _AUTH_ERRORS:
        return AtmosphereAuthError(f"{where} refused the credentials ({detail}); log in again")
    if error in _NOT_FOUND or "could not locate record" in message.lower() or "not found" in message.lower():
        return RecordNotFound(f"{where}: {detail}")
    if response.status_code >= 500:
        return AtmosphereUnavailable(f"{where} failed on the server: {detail}")
    return AtmosphereError(f"{where} refused the request: {detail}")
