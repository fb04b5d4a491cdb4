"""``python -m bench.typed`` runs and prints its table (tiny counts)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_typed_bench_prints_a_row_per_shape() -> None:
    """The command runs, checks its objects round-trip, and prints one row per shape."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench.typed", "--number", "5", "--repeat", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert "| new (spec only) |" in proc.stdout
    assert "| synced (status, 10 targets) |" in proc.stdout
