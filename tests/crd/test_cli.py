"""``python -m informer.crd``: generate, --check (what ``make test`` runs), models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from informer.crd._cli import main

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "controllers" / "kube_informer_samples" / "crds" / "configmapmirror.yaml"
TARGET = "kube_informer_samples.configmap_mirror_types"


def test_the_committed_sample_crd_is_current(capsys: pytest.CaptureFixture[str]) -> None:
    """What `make test` checks: the YAML is what the models generate."""
    rel = str(SAMPLE.relative_to(ROOT))
    assert main(["generate", TARGET, "-o", rel, "--check"]) == 0 or pytest.fail(
        capsys.readouterr().err
    )


def test_check_fails_with_a_diff_when_the_file_was_edited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    copy = tmp_path / "crd.yaml"
    assert main(["generate", TARGET, "-o", str(copy)]) == 0
    assert main(["generate", TARGET, "-o", str(copy), "--check"]) == 0
    copy.write_text(copy.read_text().replace("maxLength: 253", "maxLength: 254"))
    assert main(["generate", TARGET, "-o", str(copy), "--check"]) == 1
    err = capsys.readouterr().err
    assert "-                  maxLength: 254" in err and "+                  maxLength: 253" in err
    assert "is out of date: regenerate it" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["generate", "no_such_module_x:Thing"], "cannot import no_such_module_x"),
        (["generate", "kube_informer_samples.configmap_mirror_types:Nope"], "has no Nope"),
        (
            ["generate", "kube_informer_samples.configmap_mirror_types:MirrorSpec"],
            "is not a CustomResource",
        ),
        (["generate", "kube_informer_samples.configmap_reloader"], "defines no CustomResource"),
        (["generate", TARGET, "--check"], "--check needs --output FILE"),
        (["models", "pyproject.toml"], "error: "),
    ],
    ids=[
        "module",
        "attribute",
        "not-a-resource",
        "none-defined",
        "check-without-output",
        "not-yaml",
    ],
)
def test_unusable_targets_exit_2_with_one_line(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ROOT)
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_models_command_writes_importable_source(tmp_path: Path) -> None:
    out = tmp_path / "mirror_models.py"
    proc = subprocess.run(
        [sys.executable, "-m", "informer.crd", "models", str(SAMPLE), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    source = out.read_text()
    # two versions: one class per version, named after it
    assert "class ConfigMapMirrorV1alpha1(CustomResource):" in source
    assert "class ConfigMapMirrorV1beta1(CustomResource):" in source
    assert "class ConfigMapMirrorV1alpha1SpecNamespaceSelector(Schema):" in source
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import mirror_models as m; print(m.ConfigMapMirrorV1alpha1.resource)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert check.returncode == 0, check.stderr
    assert "configmapmirrors" in check.stdout
