"""A `data add` killed with SIGKILL at any moment leaves the old state or the new one."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest


def _shipyard(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SHIPYARD_USER="alice")
    return subprocess.run(
        [sys.executable, "-m", "shipyard", "--project", str(project), *args],
        capture_output=True,
        text=True,
        env=env,
    )


@pytest.mark.slow
def test_sigkill_during_data_add_never_leaves_a_partial_version(tmp_path: Path) -> None:
    """After kills at random moments of `data add`, verify and audit verify pass and every
    registered version is complete and readable."""
    project = tmp_path / "proj"
    assert _shipyard(tmp_path, "init", str(project)).returncode == 0
    rng = np.random.default_rng(0)
    n = 400_000
    csv = tmp_path / "big.csv"
    pl.DataFrame(
        {
            "id": np.arange(n),
            "x": rng.normal(size=n),
            "city": rng.choice(["a", "b", "c", "d"], n),
        }
    ).write_csv(csv)

    t0 = time.monotonic()
    full = _shipyard(project, "data", "add", "ref", str(csv), "--json")
    duration = time.monotonic() - t0
    assert full.returncode == 0, full.stderr

    env = dict(os.environ, SHIPYARD_USER="alice")
    pick = random.Random(20261126)
    for i in range(10):
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shipyard",
                "--project",
                str(project),
                "data",
                "add",
                f"d{i}",
                str(csv),
                "--json",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        time.sleep(pick.uniform(0.05, duration * 1.1))
        proc.kill()
        proc.wait()

    # Each kill wrote under its own name, so whatever one left half-done is still there now.
    store = _shipyard(project, "verify", "--json")
    assert store.returncode == 0, store.stdout + store.stderr
    assert json.loads(store.stdout)["ok"] is True
    chain = _shipyard(project, "audit", "verify", "--json")
    assert chain.returncode == 0, chain.stdout
    assert json.loads(chain.stdout)["ok"] is True

    listed = json.loads(_shipyard(project, "data", "list", "--json").stdout)
    events = json.loads(
        _shipyard(project, "audit", "log", "--action", "dataset.add", "--json").stdout
    )
    # Every version that exists was committed with its event, and reads back whole.
    assert len(events) == sum(d["versions"] for d in listed)
    for d in listed:
        out = tmp_path / f"{d['name']}.parquet"
        got = _shipyard(project, "data", "get", f"{d['name']}@1", "-o", str(out))
        assert got.returncode == 0, got.stderr
        assert pl.read_parquet(out).height == n
    # Blobs left by killed writes are garbage: gc removes them and nothing that is referenced.
    gc = _shipyard(project, "gc", "--grace", "0", "--json")
    assert gc.returncode == 0, gc.stderr
    after = json.loads(_shipyard(project, "verify", "--json").stdout)
    assert after["ok"] is True and after["unreferenced"] == 0
    assert len(json.loads(gc.stdout)["blobs"]) == json.loads(store.stdout)["unreferenced"]
    # The store still accepts new work after the kills.
    again = _shipyard(project, "data", "add", "after", str(csv), "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["rows"] == n
