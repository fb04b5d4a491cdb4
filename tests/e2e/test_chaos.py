"""The chaos soak (``hack/chaos``, ``make chaos``): its checks, then a 60 s run.

The checks are unit-tested first so that a soak reporting "OK" means something: the
handler view flags impossible event sequences, the diff names missing, ghost and stale
keys, and the fault proxy's request rewriting keeps one request per connection. Then
the tool itself runs for 60 s (seeded) against a real control plane in a subprocess,
and must exit 0 with recoveries for most fault kinds.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from informer import DeletedFinalStateUnknown

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # hack/ is not an installed package: it runs from the repo
    sys.path.insert(0, str(ROOT))

from hack.chaos.__main__ import parse_args  # noqa: E402
from hack.chaos.fault_proxy import _rewrite_head  # noqa: E402
from hack.chaos.faults import DEFAULT_FAULTS  # noqa: E402
from hack.chaos.observer import HandlerView, diff  # noqa: E402
from hack.chaos.report import FaultRecord, format_table  # noqa: E402
from hack.chaos.sharded import (  # noqa: E402
    REPLICA_FAULTS,
    SHARDED_FAULTS,
    cache_of,
    missed_deletions,
    overlaps,
    unreconciled,
)

SOAK_SECONDS = 60
SEED = 20261128


def cm(name: str, rv: str, namespace: str = "ns") -> dict[str, object]:
    return {"metadata": {"name": name, "namespace": namespace, "resourceVersion": rv}}


# -- the checks ---------------------------------------------------------------------------
def test_handler_view_follows_a_consistent_event_stream() -> None:
    view = HandlerView("t")
    view.on_add(cm("a", "1"))
    view.on_add(cm("b", "2"))
    view.on_update(cm("a", "1"), cm("a", "3"))
    view.on_delete(cm("b", "4"))
    view.on_delete(DeletedFinalStateUnknown("ns/a", cm("a", "3")))
    assert view.state == {}
    assert (view.adds, view.updates, view.deletes, view.tombstones) == (2, 1, 2, 1)
    assert view.anomaly_count == 0


@pytest.mark.parametrize(
    ("events", "anomaly"),
    [
        ([("add", "a", "1"), ("add", "a", "2")], "on_add of a key the handler holds"),
        ([("update", "a", "1")], "on_update of a key the handler never saw"),
        ([("add", "a", "1"), ("update", "a", "5")], "old object (rv 5) is not rv 1"),
        ([("delete", "a", "1")], "on_delete of a key the handler never saw"),
    ],
    ids=["duplicate-add", "update-unknown", "update-skipped-rv", "delete-unknown"],
)
def test_handler_view_flags_impossible_sequences(
    events: list[tuple[str, str, str]], anomaly: str
) -> None:
    view = HandlerView("t")
    for kind, name, rv in events:
        if kind == "add":
            view.on_add(cm(name, rv))
        elif kind == "update":
            view.on_update(cm(name, rv), cm(name, str(int(rv) + 1)))
        else:
            view.on_delete(cm(name, rv))
    assert view.anomaly_count == 1
    assert anomaly in view.anomalies[0]


def test_diff_names_missing_ghost_and_stale_keys() -> None:
    truth = {"ns/a": "1", "ns/b": "2", "ns/c": "3"}
    result = diff({"ns/a": "1", "ns/b": "9", "ns/gone": "4"}, truth)
    assert result.missing == ("ns/c",)
    assert result.ghosts == ("ns/gone",)
    assert result.stale == ("ns/b",)
    assert "1 ghost (ns/gone)" in result.describe()
    assert not diff(dict(truth), truth)


def test_fault_proxy_forwards_one_terminated_head_with_connection_close() -> None:
    head = (
        b"GET /api/v1/configmaps?allowWatchBookmarks=true&watch=true HTTP/1.1\r\n"
        b"Host: 127.0.0.1\r\nConnection: keep-alive\r\nAuthorization: Bearer t"
    )
    rewritten, is_watch, has_auth = _rewrite_head(head)
    assert rewritten.endswith(b"\r\nConnection: close\r\n\r\n")
    assert rewritten.count(b"\r\n\r\n") == 1  # a second blank line would be a 2nd request
    assert b"keep-alive" not in rewritten
    assert (is_watch, has_auth) == (True, True)
    _, is_watch, has_auth = _rewrite_head(b"GET /api/v1/configmaps?limit=500 HTTP/1.1\r\nHost: x")
    assert (is_watch, has_auth) == (False, False)


def test_table_counts_recoveries_and_failures_per_fault() -> None:
    records = [
        FaultRecord("watch-cut", at=1.0, held=2.0, recovery=0.5, controllers=0.6),
        FaultRecord("watch-cut", at=5.0, held=2.0, recovery=1.5, controllers=1.6),
        FaultRecord("stall", at=9.0, held=5.0, failures=["not converged"]),
    ]
    records[0].evidence.update({"conn": 3})
    table = format_table(records, ["watch-cut", "stall", "compaction"])
    rows = {line.split()[0]: line.split() for line in table.splitlines()[2:-2]}
    assert rows["watch-cut"][1:6] == ["2", "2", "1.00", "1.50", "1.10"]
    assert rows["watch-cut"][-1] == "conn:3"
    assert rows["stall"][1:3] == ["1", "0"] and rows["stall"][7] == "1"
    assert rows["compaction"][1:3] == ["0", "0"]


def test_faults_flag_rejects_unknown_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_args([]).faults == DEFAULT_FAULTS
    assert "token-rotation" in parse_args(["--faults", "all"]).faults
    assert "token-rotation" in DEFAULT_FAULTS
    assert parse_args(["--faults", "stall,watch-cut"]).faults == ("stall", "watch-cut")
    with pytest.raises(SystemExit) as exc:
        parse_args(["--faults", "stall,meteor"])
    assert exc.value.code == 2
    assert "unknown fault(s) meteor" in capsys.readouterr().err


def test_sharded_mode_has_the_replica_faults_and_not_the_token(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ns = parse_args(["--sharded"])
    assert ns.faults == SHARDED_FAULTS
    assert set(REPLICA_FAULTS) <= set(ns.faults) and "token-rotation" not in ns.faults
    assert parse_args(["--sharded", "--faults", "replica-kill"]).faults == ("replica-kill",)
    with pytest.raises(SystemExit):
        parse_args(["--faults", "replica-kill"])
    assert "not available without --sharded" in capsys.readouterr().err


def test_overlaps_are_found_across_replicas_and_a_kill_ends_a_reconcile() -> None:
    spans = [
        ("r0", "ns/a", 1.0, 2.0),
        ("r1", "ns/a", 2.0, 3.0),  # starts as the other ends: fine
        ("r0", "ns/b", 1.0, 5.0),
        ("r2", "ns/b", 4.5, 6.0),  # overlaps r0's
        ("r1", "ns/c", 1.0, 1.5),
    ]
    (problem,) = overlaps(spans)
    assert problem.startswith("ns/b: r2 started at 4.500 while r0 reconciled it until 5.000")
    assert overlaps(spans[:2] + spans[4:]) == []


def test_a_replica_cache_is_replayed_from_its_notifications() -> None:
    events = [
        {"event": "cache.event", "op": "add", "obj_key": "ns/a", "rv": "1"},
        {"event": "cache.event", "op": "add", "obj_key": "ns/b", "rv": "2"},
        {"event": "reconcile.begin", "key": "ns/a", "start": 1.0},
        {"event": "cache.event", "op": "update", "obj_key": "ns/a", "rv": "3"},
        {"event": "cache.event", "op": "delete", "obj_key": "ns/b", "rv": None},
    ]
    assert cache_of(events) == {"ns/a": "3"}


def test_the_last_reconcile_of_every_existing_key_must_see_its_rv() -> None:
    begins = [
        ("ns/a", 1.0, "1"),
        ("ns/a", 2.0, "3"),  # the latest of a
        ("ns/b", 1.0, "2"),
        ("ns/gone", 1.0, "4"),  # deleted since: counted, not required
        ("ns/done", 1.0, "5"),
        ("ns/done", 2.0, None),  # its deletion was reconciled
    ]
    truth = {"ns/a": "3", "ns/b": "7", "ns/new": "8"}
    assert unreconciled(begins, truth) == [
        "ns/b: last reconcile saw rv 2, the server holds 7",
        "ns/new: never reconciled (holds rv 8)",
    ]
    assert missed_deletions(begins, truth) == 1


# -- the soak -----------------------------------------------------------------------------
@pytest.mark.timeout(240)
def test_a_60s_seeded_soak_recovers_from_every_fault(tmp_path: Path) -> None:
    if not os.environ.get("KUBEBUILDER_ASSETS"):
        pytest.skip("KUBEBUILDER_ASSETS is not set (conftest sets it when it can)")
    argv = [sys.executable, "-m", "hack.chaos", "--seed", str(SEED)]
    argv += ["--duration", str(SOAK_SECONDS), "--log-file", str(tmp_path / "chaos.log")]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=220, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert re.search(r"^chaos OK: seed=\d+", proc.stdout, re.MULTILINE), output
    recovered = {}
    for line in proc.stdout.splitlines():
        fields = line.split()
        if fields and fields[0] in DEFAULT_FAULTS and fields[1].isdigit():
            recovered[fields[0]] = int(fields[2])
    assert set(recovered) == set(DEFAULT_FAULTS), output
    kinds = [name for name, count in recovered.items() if count >= 1]
    assert len(kinds) >= 5, f"recoveries only for {kinds}:\n{output}"
