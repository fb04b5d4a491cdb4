"""A controller's own ``__init__`` or ``setup`` raising: the runner says so in one line
naming the class, the exception and the user's file:line, and exits 3 (your code); the
traceback only with ``--log-level debug``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from runner_harness import run_to_exit
from test_run import assert_runner_error, error_lines

from informer.run import ExitCode

pytestmark = pytest.mark.anyio

BROKEN = """\
from informer import Controller
from informer.resources import CONFIGMAPS


def parse(text):
    return int(text)  # <parse>


class InSetup(Controller):
    name = "in-setup"

    def setup(self):
        self.watch(CONFIGMAPS)
        raise KeyError("missing setting")  # <in-setup>

    async def reconcile(self, key):
        return None


class InHelper(Controller):
    name = "in-helper"

    def setup(self):
        self.threshold = parse("ten")

    async def reconcile(self, key):
        return None


class InInit(Controller):
    name = "in-init"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        raise RuntimeError("no credentials for the backend")  # <in-init>

    async def reconcile(self, key):
        return None


class BadAttribute(Controller):  # <bad-attribute>
    name = "bad-attribute"
    workers = 0

    async def reconcile(self, key):
        return None
"""


def line_of(marker: str) -> int:
    [number] = [i for i, line in enumerate(BROKEN.splitlines(), 1) if f"# <{marker}>" in line]
    return number


@pytest.mark.parametrize(
    ("cls", "message", "marker"),
    [
        ("InSetup", "InSetup.setup() raised KeyError: 'missing setting'", "in-setup"),
        (
            "InHelper",
            "InHelper.setup() raised ValueError: invalid literal for int() with base 10: 'ten'",
            "parse",
        ),
        (
            "InInit",
            "InInit.__init__() raised RuntimeError: no credentials for the backend",
            "in-init",
        ),
        (
            "BadAttribute",
            "BadAttribute.__init__() raised ValueError: BadAttribute: ",
            "bad-attribute",
        ),
    ],
    ids=["setup", "helper", "init", "class-attribute"],
)
async def test_a_controller_that_raises_while_built_is_one_line_exit_3(
    control_plane: Any, namespace: str, tmp_path: Path, cls: str, message: str, marker: str
) -> None:
    path = tmp_path / "broken.py"
    path.write_text(BROKEN)
    args = [f"broken:{cls}", "--kubeconfig", str(control_plane.kubeconfig_path), "-n", namespace]
    runner = await run_to_exit(args, tmp_path)
    line = assert_runner_error(runner, ExitCode.TARGET)
    assert line.startswith(f"error: {message}"), line
    assert f"({path}:{line_of(marker)})" in line, line
    assert line.endswith("(--log-level debug shows the traceback)"), line


async def test_the_traceback_shows_with_log_level_debug(
    control_plane: Any, namespace: str, tmp_path: Path
) -> None:
    path = tmp_path / "broken.py"
    path.write_text(BROKEN)
    args = ["broken:InSetup", "--kubeconfig", str(control_plane.kubeconfig_path)]
    runner = await run_to_exit([*args, "-n", namespace, "--log-level", "debug"], tmp_path)
    assert runner.returncode == ExitCode.TARGET, runner.describe()
    lines = error_lines(runner.stderr)
    assert lines[0].startswith("Traceback (most recent call last):"), runner.stderr
    assert f'File "{path}", line {line_of("in-setup")}, in setup' in runner.stderr
    assert lines[-1] == (
        f"error: InSetup.setup() raised KeyError: 'missing setting' ({path}:{line_of('in-setup')})"
    )
