"""The control plane's state folder: certificates, kubeconfigs, logs, etcd's data.

Either a fresh temporary folder (``kube-informer-cp-*`` in the system's temporary
directory), removed on close, or a fixed folder that is created if missing, has its
previous etcd data and users replaced, and is left in place on close. Either way the
folder is locked (an exclusive ``flock`` on ``.lock``) while in use: a second control
plane cannot use it, and a temporary folder whose owner died without cleaning up (SIGKILL)
is recognised as unlocked and removed by the next one to start.
"""

from __future__ import annotations

import fcntl
import shutil
import tempfile
import time
from pathlib import Path
from typing import IO

import structlog

from ._process import ControlPlaneError

__all__ = ["StateDir", "remove_stale_temp_dirs"]

log = structlog.get_logger(__name__)

_TEMP_PREFIX = "kube-informer-cp-"


class StateDir:
    """One control plane's folder (see the module docstring); ``fixed``: a folder to
    keep, ``None`` for a temporary one."""

    def __init__(self, fixed: Path | None) -> None:
        self._fixed = fixed
        self.path: Path | None = None
        """Set by :meth:`open` (also when locking it then fails)."""
        self._owned = False
        self._lock_file: IO[bytes] | None = None

    def open(self) -> Path:
        """Create (or reset) and lock the folder; raises :class:`ControlPlaneError` when
        another running control plane holds it."""
        if self._fixed is None:
            remove_stale_temp_dirs()
            self.path = Path(tempfile.mkdtemp(prefix=_TEMP_PREFIX))
            self._owned = True
            self._lock(self.path)
        else:
            self.path = self._fixed
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock(self.path)
            shutil.rmtree(self.path / "etcd-data", ignore_errors=True)
            shutil.rmtree(self.path / "users", ignore_errors=True)
        return self.path

    def close(self) -> None:
        """Release the lock; remove the folder if it is a temporary one. Idempotent."""
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None
        if self._owned and self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)

    def _lock(self, folder: Path) -> None:
        lock = open(folder / ".lock", "wb")  # noqa: SIM115 - held open while running
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise ControlPlaneError(
                f"{folder} is in use by another running control plane"
            ) from None
        self._lock_file = lock


def remove_stale_temp_dirs() -> None:
    """Delete temporary state folders whose owner died without cleaning up (SIGKILL).

    A live owner holds an exclusive ``flock`` on ``.lock``; a folder younger than a
    minute is left alone (its owner may not have locked it yet).
    """
    root = Path(tempfile.gettempdir())
    for folder in root.glob(f"{_TEMP_PREFIX}*"):
        lock_path = folder / ".lock"
        try:
            if time.time() - lock_path.stat().st_mtime < 60:
                continue
            with open(lock_path, "rb") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # no lock file, or locked by a live owner
            continue
        log.debug("control_plane.stale_dir_removed", dir=str(folder))
        shutil.rmtree(folder, ignore_errors=True)
