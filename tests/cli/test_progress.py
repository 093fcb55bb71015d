"""Long work shows a progress bar on a terminal, and nothing under --json."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl


def _run_on_terminal(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal; returns (exit code, stdout, terminal output)."""
    master, slave = pty.openpty()
    env = dict(os.environ, SHIPYARD_USER="alice", COLUMNS="100", TERM="xterm")
    proc = subprocess.Popen(
        [sys.executable, "-m", "shipyard", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    out = proc.stdout.read().decode() if proc.stdout else ""
    proc.wait()
    os.close(master)
    return proc.returncode, out, b"".join(chunks).decode(errors="replace")


def test_data_add_draws_progress_on_a_terminal_but_not_under_json(tmp_path: Path) -> None:
    """On a terminal `data add` draws its stages; with --json the terminal stays silent and
    stdout is one JSON document."""
    env = dict(os.environ, SHIPYARD_USER="alice")
    subprocess.run([sys.executable, "-m", "shipyard", "init", str(tmp_path)], check=True, env=env)
    rng = np.random.default_rng(1)
    n = 300_000
    csv = tmp_path / "rows.csv"
    pl.DataFrame({"id": np.arange(n), "x": rng.normal(size=n)}).write_csv(csv)

    code, out, terminal = _run_on_terminal(["data", "add", "rows", str(csv)], tmp_path)
    assert code == 0, terminal
    assert "hashing rows.csv" in terminal or "profiling columns" in terminal
    assert out.startswith("added rows@1")

    code, out, terminal = _run_on_terminal(["data", "add", "rows2", str(csv), "--json"], tmp_path)
    assert code == 0, terminal
    assert terminal.strip() == ""
    assert json.loads(out)["rows"] == n
