"""Smoke test of ``python -m bench``: every benchmark runs once on a tiny input.

Timings are printed, never asserted. The client-go peer runs only when its binary is
already built under ``.cache/bench/`` (``make bench`` builds it), so that ``make test``
never waits for a Go build; the Python peers that the ``bench`` extra brings (kopf, the
official client) are skipped, with the reason in the tables, when not installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TABLES = (
    "### Pipeline throughput",
    "### Initial sync from the local control plane",
    "### Memory per cached object",
    "### Reconcile latency",
)


@pytest.mark.timeout(240)
def test_every_benchmark_runs_on_a_tiny_input(capsys: pytest.CaptureFixture[str]) -> None:
    if not os.environ.get("KUBEBUILDER_ASSETS"):
        pytest.skip("KUBEBUILDER_ASSETS is not set (conftest sets it when it can)")
    if str(ROOT) not in sys.path:  # bench/ is not an installed package: it runs from the repo
        sys.path.insert(0, str(ROOT))
    from bench._proc import CLIENTGO_BIN, clientgo_binary

    binary, why = clientgo_binary(build=False)
    with capsys.disabled():
        if binary is None:
            print(f"\n[bench smoke] client-go peer not run: {why}")
        else:
            print(
                f"\n[bench smoke] client-go peer: {CLIENTGO_BIN.relative_to(ROOT)} {why}".rstrip()
            )
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--no-build"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=220,
        check=False,
    )
    out = proc.stdout
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out[-3000:]}\n{proc.stderr[-3000:]}"
    for title in TABLES:
        assert title in out, f"missing table {title!r}\n{out[-3000:]}"
    # Our own rows always have figures; only peers may be skipped.
    for row in ("kube-informer SharedIndexInformer", "kube-informer (list, GC on)",
                "kube-informer Controller"):  # fmt: skip
        line = next(ln for ln in out.splitlines() if ln.startswith(f"| {row}") or f"| {row} " in ln)
        assert "skipped" not in line and "timeout" not in line, line
    with capsys.disabled():
        skipped = [ln for ln in out.splitlines() if "skipped:" in ln]
        print("[bench smoke] " + (f"{len(skipped)} skipped rows" if skipped else "all peers ran"))
