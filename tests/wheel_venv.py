"""Test helper: the library as a stranger gets it, a wheel installed in a fresh venv.

:func:`wheel_venv` builds the ``kube-informer`` wheel from a copy of the checkout (never
in place: the build would write ``build/`` and ``*.egg-info`` into the checkout) and
installs it (not editable) with pytest into a virtual environment of its own; the samples
are not installed. Both are cached under the checkout's ``.cache/test-wheel/``: the venv
per set of dependencies (``venv-<digest>``: created, and the dependencies installed from
pip's cache or the index, once), the wheel per digest of every file it is built from
(``wheel-<digest>``: a changed source is a new wheel, reinstalled into the venv without
its dependencies, in seconds). An exclusive lock makes pytest-xdist workers share one
build; older wheels and venvs are removed.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ROOT", "WheelVenv", "wheel_venv"]

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in", "CHANGELOG.md", "informer")
EXTRA_REQUIREMENTS = ("pytest>=8", "pytest-timeout>=2.3")
INSTALL_TIMEOUT = 600.0


@dataclass(frozen=True)
class WheelVenv:
    """A venv holding the built wheel: its ``python``, and the ``wheel`` file."""

    folder: Path
    wheel: Path

    @property
    def python(self) -> Path:
        return self.folder / "venv" / "bin" / "python"

    def env(self, **extra: str) -> dict[str, str]:
        """An environment for the venv's programs: this test run's pytest variables and
        the checkout's virtualenv left out."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PYTEST_", "VIRTUAL_ENV", "PYTHONPATH"))
        }
        env["PATH"] = f"{self.python.parent}{os.pathsep}{env.get('PATH', '')}"
        env.update(extra)
        return env


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return h.hexdigest()[:16]


def _source_digest() -> str:
    parts: list[bytes] = []
    for name in SOURCES:
        path = ROOT / name
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for file in files:
            if file.is_file() and "__pycache__" not in file.parts:
                parts += [str(file.relative_to(ROOT)).encode(), file.read_bytes()]
    return _digest(*parts)


def _dependency_digest() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"], *EXTRA_REQUIREMENTS]
    return _digest(repr([sys.version_info[:2], requirements]).encode())


def _run(argv: list[str], cwd: Path) -> None:
    proc = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{proc.stdout}\n{proc.stderr}")


def wheel_venv() -> WheelVenv:
    """The venv holding the wheel of the current sources, built on first use."""
    cache = ROOT / ".cache" / "test-wheel"
    cache.mkdir(parents=True, exist_ok=True)
    wheels = cache / f"wheel-{_source_digest()}"
    folder = cache / f"venv-{_dependency_digest()}"
    with open(cache / ".lock", "wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for old in cache.glob("*-*"):
            if old not in (wheels, folder):
                shutil.rmtree(old, ignore_errors=True)
        if not (wheels / "done").exists():
            shutil.rmtree(wheels, ignore_errors=True)
            _build_wheel(wheels)
            (wheels / "done").write_text("ok\n")
        [wheel] = sorted(wheels.glob("kube_informer-*.whl"))
        venv = WheelVenv(folder, wheel)
        installed = folder / f"installed-{wheels.name}"
        if not installed.exists():
            _install(venv)
            for marker in folder.glob("installed-*"):
                marker.unlink()
            installed.write_text("ok\n")
    return venv


def _build_wheel(wheels: Path) -> None:
    wheels.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="kube-informer-src-") as tmp:
        source = Path(tmp) / "kube-informer"
        source.mkdir()
        for name in SOURCES:
            path = ROOT / name
            if path.is_dir():
                shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(path, source / name)
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
        _run([*pip, "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)], wheels)


def _install(venv: WheelVenv) -> None:
    """The wheel into the venv: with its dependencies into a new venv, alone (replacing
    the previous wheel) into one that has them."""
    pip = [str(venv.python), "-m", "pip", "--disable-pip-version-check"]
    if not (venv.folder / "deps-done").exists():
        shutil.rmtree(venv.folder, ignore_errors=True)
        venv.folder.mkdir(parents=True)
        _run([sys.executable, "-m", "venv", str(venv.folder / "venv")], venv.folder)
        _run([*pip, "install", "-q", str(venv.wheel), *EXTRA_REQUIREMENTS], venv.folder)
        (venv.folder / "deps-done").write_text("ok\n")
    else:
        _run(
            [*pip, "install", "-q", "--no-deps", "--force-reinstall", str(venv.wheel)], venv.folder
        )
