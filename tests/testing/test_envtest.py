"""``python -m informer.testing.envtest``: where the binaries are looked for, what
``install`` builds (with a stand-in ``go`` on ``PATH``: the real build is ``make test``'s),
its progress and its errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from informer.testing.envtest import PINNED, RELEASES, candidates, release
from informer.testing.envtest import _locate as locate

FAKE_GO = """#!/bin/sh
# A stand-in for go: `go env GOVERSION`, and `go build ... -o OUT PKG` writes OUT.
if [ "$1" = env ]; then echo "go1.26.8"; exit 0; fi
echo "$@" >> "$FAKE_GO_LOG"
while [ $# -gt 0 ]; do
    if [ "$1" = -o ]; then shift; printf '#!/bin/sh\\necho built\\n' > "$1"; fi
    shift
done
"""

ALL = ("kube-apiserver", "etcd", "kube-controller-manager")

AS_INSTALLED = """
import sys
from informer.testing.envtest import _cli, _locate
_locate.checkout_root = lambda: None  # as from a wheel: this checkout's .cache is not seen
sys.exit(_cli.main(sys.argv[1:]))
"""


def envtest(
    tmp_path: Path, *args: str, path: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBEBUILDER_ASSETS"}
    env.update(
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        FAKE_GO_LOG=str(tmp_path / "go.log"),
        PATH=path if path is not None else f"{tmp_path / 'bin'}{os.pathsep}{env['PATH']}",
    )
    return subprocess.run(
        [sys.executable, "-c", AS_INSTALLED, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def fake_go(tmp_path: Path) -> Path:
    (tmp_path / "bin").mkdir()
    go = tmp_path / "bin" / "go"
    go.write_text(FAKE_GO)
    go.chmod(0o755)
    return go


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, PINNED.kubernetes),
        ("1.33", "v1.33.13"),
        ("v1.34", "v1.34.4"),
        ("1.35.4", "v1.35.4"),
        ("v1.36.3", "v1.36.3"),
    ],
)
def test_release_names(spec: str | None, expected: str) -> None:
    assert release(spec).kubernetes == expected


@pytest.mark.parametrize("spec", ["1.32", "1.36.9", "latest", "2"])
def test_an_unsupported_version_lists_the_supported_ones(spec: str) -> None:
    with pytest.raises(
        ValueError, match=re.escape("pick one of v1.33.13, v1.34.4, v1.35.4, v1.36.3")
    ):
        release(spec)


def test_every_release_ships_its_go_modules() -> None:
    root = Path(locate.__file__).parent / "go" / "kubernetes"
    for rel in RELEASES:
        mod = (root / rel.kubernetes / "go.mod").read_text()
        assert f"k8s.io/kubernetes {rel.kubernetes}" in mod
        assert (root / rel.kubernetes / "go.sum").stat().st_size > 10_000
    assert [r.minor for r in RELEASES] == ["1.33", "1.34", "1.35", "1.36"]


def test_the_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path / "assets"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    found = candidates()
    assert [c.source for c in found] == [
        "$KUBEBUILDER_ASSETS",
        "the user cache",
        "the checkout",
        "setup-envtest's folder",
    ]
    assert found[1].folder == tmp_path / "cache/kube-informer/control-plane" / PINNED.folder_name
    assert found[2].folder.parts[-3:] == (".cache", "control-plane", PINNED.folder_name)
    assert found[3].folder.parent == tmp_path / "data/kubebuilder-envtest/k8s"
    assert found[3].folder.name.startswith(PINNED.kubernetes.lstrip("v") + "-linux-")


def test_install_builds_what_is_missing_then_finds_it(tmp_path: Path, fake_go: Path) -> None:
    proc = envtest(tmp_path, "install")
    assert proc.returncode == 0, proc.stderr
    folder = tmp_path / "cache/kube-informer/control-plane" / PINNED.folder_name
    assert proc.stdout.splitlines()[-1] == str(folder)
    assert all((folder / name).is_file() for name in ALL)
    lines = proc.stderr.splitlines()
    assert lines[0].startswith(f"control plane: building kube-apiserver {PINNED.kubernetes} (1/3)")
    assert "the first build takes about" in lines[0]
    assert lines[-1].startswith(f"control plane: {PINNED}: built kube-apiserver, etcd, ")
    builds = (tmp_path / "go.log").read_text().splitlines()
    assert len(builds) == 3 and all("-trimpath" in b for b in builds)
    assert f"-X k8s.io/component-base/version.gitVersion={PINNED.kubernetes}" in builds[0]

    (folder / "kube-controller-manager").unlink()  # e.g. a cache from before it existed
    again = envtest(tmp_path, "install")
    assert again.returncode == 0, again.stderr
    assert len((tmp_path / "go.log").read_text().splitlines()) == 4  # only the missing one
    found = envtest(tmp_path, "install")
    assert "found in the user cache" in found.stderr
    assert found.stdout.splitlines()[-1] == str(folder)
    assert len((tmp_path / "go.log").read_text().splitlines()) == 4

    where = envtest(tmp_path, "path", "--controller-manager")
    assert where.returncode == 0 and where.stdout.strip() == str(folder)


def test_install_into_a_folder_for_another_version(tmp_path: Path, fake_go: Path) -> None:
    proc = envtest(tmp_path, "install", "--k8s", "1.33", "--dir", "out")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(tmp_path / "out" / "k8s-v1.33.13-etcd-v3.6.16")
    assert "gitVersion=v1.33.13" in (tmp_path / "go.log").read_text()


def test_without_go_and_binaries_the_error_says_how_to_get_them(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    for tool in ("sh",):  # a PATH without go
        (tmp_path / "bin" / tool).symlink_to(f"/bin/{tool}")
    proc = envtest(tmp_path, "install", path=str(tmp_path / "bin"))
    assert proc.returncode == 1
    [line] = proc.stderr.splitlines()
    assert line.startswith("error: Go is not installed, and ")
    assert "install Go 1.26+" in line and "KUBEBUILDER_ASSETS" in line
    assert proc.stdout == ""
    where = envtest(tmp_path, "path", path=str(tmp_path / "bin"))
    assert where.returncode == 1
    assert where.stdout.strip().endswith(PINNED.folder_name)
    assert "not installed: `python -m informer.testing.envtest install`" in where.stderr


def test_a_failed_build_shows_the_end_of_its_output(tmp_path: Path, fake_go: Path) -> None:
    fake_go.write_text(
        '#!/bin/sh\nif [ "$1" = env ]; then echo go1.26.8; exit 0; fi\n'
        'echo "cmd/kube-apiserver: undefined: app.NewAPIServerCommand"; exit 2\n'
    )
    proc = envtest(tmp_path, "install")
    assert proc.returncode == 1
    assert "`go build` of kube-apiserver v1.36.3 failed (exit 2)" in proc.stderr
    assert "undefined: app.NewAPIServerCommand" in proc.stderr
    folder = tmp_path / "cache/kube-informer/control-plane" / PINNED.folder_name
    assert not (folder / "kube-apiserver").exists()  # never half a binary


def test_kubebuilder_assets_is_used_as_is(tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    assets.mkdir()
    for name in ("kube-apiserver", "etcd"):
        (assets / name).write_text("#!/bin/sh\n")
        (assets / name).chmod(0o755)
    proc = subprocess.run(
        [sys.executable, "-m", "informer.testing.envtest", "install"],
        env={**os.environ, "KUBEBUILDER_ASSETS": str(assets)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(assets)
    assert "has no kube-controller-manager" in proc.stderr


def test_the_go_sources_ship_in_the_package() -> None:
    """Package data (the wheel's own content is checked in tests/e2e/test_library_user.py)."""
    from importlib.resources import files

    root = files("informer.testing.envtest") / "go"
    assert (root / "etcd" / "main.go").is_file()
    assert (root / "kubernetes" / "cmd" / "kube-controller-manager" / "main.go").is_file()
