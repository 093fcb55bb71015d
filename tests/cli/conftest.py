"""Fixtures for driving the real ``shipyard`` command line in-process."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


Cli = Callable[..., Result]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """Run ``shipyard ARGS`` through the console-script entry point (an up-to-date
    ``pipeline run`` answered at once included); capture exit code and output."""
    from shipyard.cli.entry import run

    def invoke(*args: str | Path, user: str | None = None) -> Result:
        if user is not None:
            monkeypatch.setenv("SHIPYARD_USER", user)
        monkeypatch.setattr(sys, "argv", ["shipyard", *map(str, args)])
        capsys.readouterr()
        try:
            run()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return invoke


@pytest.fixture
def cli_project(tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh project created with `shipyard init` by alice, as the current directory."""
    monkeypatch.setenv("SHIPYARD_USER", "alice")
    root = tmp_path / "proj"
    res = cli("init", root)
    assert res.code == 0, res.stderr
    monkeypatch.chdir(root)
    return root
