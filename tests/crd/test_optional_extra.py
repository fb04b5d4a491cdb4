"""pydantic is an optional extra: the library imports without it, informer.crd says
what to install."""

from __future__ import annotations

import subprocess
import sys

WITHOUT_PYDANTIC = (
    "import sys; sys.modules['pydantic'] = None; sys.modules['pydantic_core'] = None\n"
)


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_PYDANTIC + code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_library_imports_without_pydantic() -> None:
    proc = run(
        "import informer, informer.cache, informer.meta, informer.resources, informer.workqueue, "
        "informer.observability, informer.leaderelection, informer.predicates, informer.run, "
        "informer.testing, controllers\n"
        "assert 'pydantic' not in {m.split('.')[0] for m in sys.modules if sys.modules[m]}\n"
        "print('ok')"
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_informer_crd_without_pydantic_says_what_to_install() -> None:
    proc = run("import informer.crd")
    assert proc.returncode == 1
    assert "informer.crd needs pydantic v2: pip install 'kube-informer[crd]'" in proc.stderr
