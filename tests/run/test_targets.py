"""Which controllers ``python -m informer.run`` runs, and that it imports only those.

Registered controllers are entry points (``kube_informer.controllers``, run without a
target; ``kube_informer.controllers.opt_in``, run only when named); targets are modules,
``module:Class`` or files. A user package called ``controllers`` (most operator projects
have one) must never meet the samples, and an entry point the runner does not run is
never imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from runner_harness import RUN, clean_env, run_cli
from test_run import USER_CONTROLLERS, assert_one_line_error, error_lines

from informer.run import ExitCode, build_parser
from informer.run.runner import _controller_classes
from informer.run.targets import (
    ENTRY_POINT_GROUP,
    OPT_IN_GROUP,
    TargetError,
    load_target,
    registered_controllers,
    select_controllers,
)

SAMPLE_DEFAULTS = ["configmap-reloader", "deployment-inventory"]


def chosen(*argv: str) -> list[str]:
    return [c.name for c in _controller_classes(build_parser().parse_args(argv))]


def test_targets_load_modules_attributes_and_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "userctl_mod.py").write_text(USER_CONTROLLERS)
    (tmp_path / "other.py").write_text(
        "from userctl_mod import ConfigMapLogger  # imported, not defined here: skipped\n"
        "from informer import Controller\n"
        "class Abstract(Controller):  # no reconcile: skipped\n"
        "    pass\n"
        "class Mine(Abstract):\n"
        "    async def reconcile(self, key):\n"
        "        return None\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    [by_module] = load_target("userctl_mod")
    assert by_module.name == "cm-logger"
    assert load_target("userctl_mod:ConfigMapLogger") == [by_module]
    [by_file] = load_target(str(tmp_path / "userctl_mod.py"))
    assert by_file.name == "cm-logger" and by_file is not by_module  # a fresh module
    assert [c.__name__ for c in load_target("other")] == ["Mine"]
    assert [c.__name__ for c in load_target("other.py")] == ["Mine"]
    assert chosen("userctl_mod") == ["cm-logger"]
    assert chosen("userctl_mod", "--controllers", "configmap-mirror") == [
        "cm-logger",
        "configmap-mirror",
    ]


def test_the_samples_register_two_defaults_and_an_opt_in() -> None:
    from kube_informer_samples import SAMPLE_CONTROLLERS

    registered = registered_controllers()
    samples = {n: r for n, r in registered.items() if r.value.startswith("kube_informer_samples")}
    assert {n: r.opt_in for n, r in samples.items()} == {
        "configmap-reloader": False,
        "deployment-inventory": False,
        "configmap-mirror": True,
    }
    assert {n: r.load() for n, r in samples.items()} == SAMPLE_CONTROLLERS
    assert chosen() == SAMPLE_DEFAULTS
    assert chosen("--controllers", "configmap-mirror,configmap-mirror") == ["configmap-mirror"]
    with pytest.raises(TargetError, match="unknown controller 'nope'"):
        select_controllers(registered, ["nope"])


def fake_distribution(root: Path, entries: dict[str, str], group: str = ENTRY_POINT_GROUP) -> Path:
    """An installed distribution ``other-operator`` registering ``entries`` under
    ``group`` (and its module ``other_operator_ctl``) under ``root``, a folder for
    ``sys.path``."""
    (root / "other_operator_ctl.py").write_text(USER_CONTROLLERS)
    info = root / "other_operator-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: other-operator\nVersion: 1.0\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entries.items())
    (info / "entry_points.txt").write_text(f"[{group}]\n{lines}")
    return root


def test_controllers_of_other_packages_are_found_by_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    fake_distribution(site, {"cm-logger": "other_operator_ctl:ConfigMapLogger"})
    monkeypatch.syspath_prepend(str(site))
    registered = registered_controllers()
    assert registered["cm-logger"].load().__module__ == "other_operator_ctl"
    assert set(SAMPLE_DEFAULTS) <= set(registered)
    assert sorted(chosen()) == sorted([*SAMPLE_DEFAULTS, "cm-logger"])  # discovery order
    # The runner selects among every package's entries by name.
    env_path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    proc = run_cli(
        ["--controllers", "nope"],
        tmp_path,
        env={**clean_env(tmp_path), "PYTHONPATH": env_path},
    )
    line = assert_one_line_error(proc, ExitCode.TARGET)
    assert "cm-logger" in line and "configmap-reloader" in line


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"broken": "no_such_module_abc:X"}, "cannot load controller 'broken'"),
        ({"helper": "other_operator_ctl:_Helper"}, "is not a Controller subclass"),
    ],
    ids=["unimportable", "not-a-controller"],
)
@pytest.mark.parametrize("group", [ENTRY_POINT_GROUP, OPT_IN_GROUP], ids=["default", "opt-in"])
def test_a_bad_entry_point_fails_only_the_run_that_loads_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    entries: dict[str, str],
    message: str,
    group: str,
) -> None:
    monkeypatch.syspath_prepend(str(fake_distribution(tmp_path, entries, group)))
    [name] = entries
    assert chosen("--controllers", "configmap-reloader") == ["configmap-reloader"]
    with pytest.raises(TargetError, match=message):
        chosen("--controllers", name)
    if group == OPT_IN_GROUP:  # not run by default, so never imported
        assert chosen() == SAMPLE_DEFAULTS
    else:
        with pytest.raises(TargetError, match=message):
            chosen()


def test_two_entries_of_one_name_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clash = {"configmap-reloader": "other_operator_ctl:ConfigMapLogger"}
    monkeypatch.syspath_prepend(str(fake_distribution(tmp_path, clash, OPT_IN_GROUP)))
    with pytest.raises(TargetError, match="registered twice"):
        registered_controllers()


def test_a_user_package_named_controllers_never_conflicts(tmp_path: Path) -> None:
    """The project's own ``controllers`` package (first on ``sys.path``: the current
    folder) next to the installed samples: the runner loads the samples it runs and the
    user's targets; the controllers are loaded before the kubeconfig is read, so exit 4
    (no kubeconfig) proves the loading succeeded."""
    package = tmp_path / "controllers"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "mine.py").write_text(USER_CONTROLLERS)
    missing = str(tmp_path / "no-kubeconfig")
    for args in (
        [],
        ["--controllers", "configmap-reloader,deployment-inventory,configmap-mirror"],
        ["controllers.mine", "--controllers", "configmap-mirror"],
        ["controllers/mine.py"],
    ):
        proc = run_cli([*args, "--kubeconfig", missing], tmp_path)
        line = assert_one_line_error(proc, ExitCode.CONFIG)
        assert "no-kubeconfig" in line, args


NO_SAMPLES = textwrap.dedent(
    """
    import sys
    import informer.run.targets as targets

    real = targets.entry_points
    # The environment of a user who installed the library alone: no samples registered.
    targets.entry_points = lambda group: [
        e for e in real(group=group) if not e.value.startswith("kube_informer_samples")
    ]
    from informer.run import main
    sys.exit(main(sys.argv[1:]))
    """
)


@pytest.mark.parametrize(
    ("entries", "hint"),
    [
        pytest.param({}, "pip install kube-informer-samples", id="nothing-registered"),
        pytest.param(
            {"cm-logger": "other_operator_ctl:ConfigMapLogger"},
            "run only when named: --controllers cm-logger",
            id="opt-in-only",
        ),
    ],
)
def test_without_a_target_and_nothing_to_run_by_default_exits_2(
    tmp_path: Path, entries: dict[str, str], hint: str
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    fake_distribution(site, entries, OPT_IN_GROUP)
    env = {**clean_env(tmp_path), "PYTHONPATH": str(site)}
    proc = subprocess.run(
        [sys.executable, "-c", NO_SAMPLES, "--kubeconfig", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    line = assert_one_line_error(proc, ExitCode.USAGE)
    assert line.startswith("error: no controller to run: name yours as TARGETs"), line
    assert "--controllers NAME" in line and hint in line


def test_help_names_shipped_guides_only(tmp_path: Path) -> None:
    proc = run_cli(["--help"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "RESULTS.md" not in proc.stdout and "docs/" not in proc.stdout
    assert "Sharding guide" in " ".join(proc.stdout.split())
    assert error_lines(proc.stderr) == []
    assert RUN[-1] == "informer.run"
