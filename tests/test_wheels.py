"""Packaging: the six distributions as wheels and as editable installs, in fresh venvs.

``atdata`` is one import package spread over six distributions (STYLE.md, "One import
package over six distributions"). This proves the layout in the install modes users
meet: each add-on wheel ships only ``atdata/<sub>/``, core alone imports without redis
or boto3, the add-on wheels extend it, uninstalling an add-on leaves core intact, and
editable installs of all six work too.

Wheels are built with hatchling from the working tree (no build isolation, so no
download). Venvs get their third-party dependencies through ``uv pip`` pinned to
``uv.lock``'s versions, which ``uv sync`` has already put in uv's cache; the editable
installs themselves go through pip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
# Each add-on's subpackages: one tree each, atdata-atmosphere two (atmosphere, promote).
ADDONS = {
    "atdata-index-redis": ("index_redis",),
    "atdata-store-s3": ("store_s3",),
    "atdata-local": ("local",),
    "atdata-atmosphere": ("atmosphere", "promote"),
    "atdata-ray": ("ray",),
}
DISTRIBUTIONS = ["atdata-core", *ADDONS]


def _uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        pytest.fail("uv not found: tools/test installs it; run the tests through tools/test")
    return uv


def _run(*argv: str | Path, cwd: Path = ROOT) -> str:
    done = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=240)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(map(str, argv))} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One wheel per distribution, built from the working tree."""
    out = tmp_path_factory.mktemp("dist")
    built = {}
    for dist in DISTRIBUTIONS:
        _run(sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", out, ROOT / "packages" / dist)
        (wheel,) = out.glob(dist.replace("-", "_") + "-*.whl")
        built[dist] = wheel
    return built


@pytest.fixture(scope="module")
def constraints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """uv.lock's third-party versions as a pip constraints file (cached, reproducible)."""
    path = tmp_path_factory.mktemp("constraints") / "constraints.txt"
    text = _run(
        _uv(), "export", "--frozen", "--quiet", "--no-hashes", "--no-dev",
        "--no-emit-workspace", "--format", "requirements-txt",
    )  # fmt: skip
    path.write_text(text)
    return path


def _venv(path: Path) -> Path:
    _run(_uv(), "venv", "--quiet", "--python", sys.executable, path)
    return path / "bin" / "python"


def _install(python: Path, constraints: Path, *targets: str | Path) -> None:
    _run(_uv(), "pip", "install", "--quiet", "--python", python, "-c", constraints, *targets)


def _python(python: Path, code: str) -> str:
    return _run(python, "-c", code, cwd=python.parent)  # not ROOT: no ./atdata on sys.path


def _members(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        return zf.namelist()


def test_core_wheel_owns_the_package_root(wheels: dict[str, Path]) -> None:
    names = _members(wheels["atdata-core"])
    assert "atdata/__init__.py" in names and "atdata/py.typed" in names
    assert not any(n.startswith(tuple(f"atdata/{sub}/" for subs in ADDONS.values() for sub in subs)) for n in names)


@pytest.mark.parametrize("dist", list(ADDONS))
def test_addon_wheel_ships_only_its_subpackage(wheels: dict[str, Path], dist: str) -> None:
    subs = ADDONS[dist]
    dist_info = wheels[dist].name.split("-py3")[0] + ".dist-info/"
    names = _members(wheels[dist])
    strays = [n for n in names if not n.startswith((*(f"atdata/{sub}/" for sub in subs), dist_info))]
    assert strays == [], f"{dist} ships files outside {', '.join(f'atdata/{sub}/' for sub in subs)} (STYLE rule 2)"
    for sub in subs:
        assert f"atdata/{sub}/__init__.py" in names and f"atdata/{sub}/py.typed" in names


def test_wheels_in_a_fresh_venv(wheels: dict[str, Path], constraints: Path, tmp_path: Path) -> None:
    python = _venv(tmp_path / "venv")
    _install(python, constraints, wheels["atdata-core"])
    _python(
        python,
        "import importlib.util as u, atdata\n"
        "assert callable(atdata.packable) and atdata.Dataset\n"
        "assert u.find_spec('redis') is None, 'core pulled in redis'\n"
        "assert u.find_spec('boto3') is None, 'core pulled in boto3'\n"
        "assert u.find_spec('ray') is None, 'core pulled in ray'\n"
        "assert u.find_spec('atdata.local') is None\n",
    )

    _install(python, constraints, *(wheels[d] for d in ADDONS))
    site = _python(python, "import atdata, os; print(os.path.dirname(atdata.__file__))").strip()
    assert site.startswith(str(tmp_path)), site  # the wheel, not the workspace sources
    _python(
        python,
        "import atdata, atdata.local, atdata.index_redis, atdata.store_s3, atdata.atmosphere, atdata.promote, atdata.ray\n"
        "from atdata.local import servers\n"
        "assert callable(atdata.packable)\n"
        f"assert str(servers.valkey_server_path()).startswith({str(tmp_path)!r})\n"
        f"assert str(servers.rclone_path()).startswith({str(tmp_path)!r})\n",
    )
    help_text = _run(python.parent / "atdata", "local", "--help")
    assert "atdata local" in help_text

    # Uninstalling an add-on must not take core's files with it.
    _run(_uv(), "pip", "uninstall", "--quiet", "--python", python, "atdata-index-redis")
    _python(
        python,
        "import importlib.util as u, atdata\n"
        "assert callable(atdata.packable)\n"
        "assert u.find_spec('atdata.index_redis') is None\n",
    )


def test_editable_installs_in_a_fresh_venv(constraints: Path, tmp_path: Path) -> None:
    """``pip install -e`` of the six (pip drives hatchling's editable build, as users do)."""
    venv = tmp_path / "venv"
    _run(_uv(), "venv", "--quiet", "--seed", "--python", sys.executable, venv)
    python = venv / "bin" / "python"
    # Third-party dependencies, the build backend and its editable helper (editables) come
    # through uv, pinned to uv.lock; pip itself then needs no index (--no-deps --no-build-isolation).
    _install(python, constraints, "-r", constraints, "hatchling", "editables")
    editables = [arg for dist in DISTRIBUTIONS for arg in ("-e", str(ROOT / "packages" / dist))]
    _run(python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", *editables)
    out = _python(
        python,
        "import atdata, atdata.local, atdata.index_redis, atdata.store_s3, atdata.atmosphere, atdata.promote, atdata.ray\n"
        "assert callable(atdata.packable)\n"
        "print(atdata.__file__); print(atdata.local.__file__)\n",
    )
    core_file, local_file = out.split()
    assert core_file == str(ROOT / "packages/atdata-core/src/atdata/__init__.py")
    assert local_file == str(ROOT / "packages/atdata-local/src/atdata/local/__init__.py")
