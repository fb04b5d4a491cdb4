"""``bench/webhook.py``: the AdmissionReview it sends is one our webhook answers, and the
table reports medians, errors, slow answers and the p99 ratio."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # bench/ is not an installed package: it runs from the repo
    sys.path.insert(0, str(ROOT))

from bench.webhook import LABELS, review_body, table  # noqa: E402
from informer.resources import DEPLOYMENTS  # noqa: E402
from informer.webhook import ValidatingWebhook  # noqa: E402

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


async def test_the_benchmark_body_is_answered() -> None:
    hook = ValidatingWebhook(DEPLOYMENTS, lambda r: None, name="vbench.example.com")
    body = review_body()
    assert 2000 < len(body) < 5000
    answer = orjson.loads(await hook.review(body))
    assert answer["response"] == {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "allowed": True}


def test_the_table_has_medians_and_the_ratio() -> None:
    def run(p99: float, errors: int = 0) -> dict[str, float]:
        return {
            "rps": 500,
            "p50_ms": 1.0,
            "p99_ms": p99,
            "max_ms": 9.0,
            "errors": errors,
            "over_timeout": 0,
            "load1": 1.5,
        }

    text = table(
        {
            "ours": [run(3.0), run(5.0), run(4.0, 1)],
            "controller-runtime": [run(2.0), run(2.0), run(2.0)],
        },
        500,
        10,
        3,
    )
    ours = next(line for line in text.splitlines() if line.startswith(f"| {LABELS['ours']}"))
    assert "| 500 | 1.00 | 4.00 | 9.0 | 1 | 0 | 1.50, 1.50, 1.50 |" in ours
    assert "p99 ours / controller-runtime: 2.00x" in text
