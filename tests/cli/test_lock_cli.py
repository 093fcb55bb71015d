"""``shipyard lock``, ``checkout`` and ``status``: a lock file committed with the code pins the
exact data, contracts and models, and an old commit's lock gives back the old bytes."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import polars as pl
import pytest
from sklearn.linear_model import LogisticRegression

import shipyard
from shipyard.data.inference import infer_contract
from tests.cli.conftest import Cli

FIRST = pl.DataFrame({"x": [0.1, 0.4, 0.5, 0.9, 0.2, 0.8], "y": [0, 0, 1, 1, 0, 1]})
SECOND = pl.DataFrame({"x": [0.3, 0.7, 0.6, 0.95], "y": [0, 1, 1, 1]})


def _git(root: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "a",
        "GIT_AUTHOR_EMAIL": "a@example.com",
        "GIT_COMMITTER_NAME": "a",
        "GIT_COMMITTER_EMAIL": "a@example.com",
        "PATH": "/usr/bin:/bin",
        "HOME": str(root),
    }
    done = subprocess.run(
        ["git", *args], cwd=root, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout


@pytest.fixture
def project(cli_project: Path) -> Path:
    """A project with dataset train@1, contract rows@1 and model clf@1 trained on train@1."""
    with shipyard.open_project(cli_project) as p:
        train = p.datasets.add("train", FIRST)
        p.contracts.add("rows", infer_contract(FIRST))
        model = LogisticRegression().fit(FIRST.select("x").to_pandas(), FIRST["y"].to_list())
        with p.start_run("clf") as run:
            run.log_input(train.ref, context="train")
            run.log_model(model, "clf", input_example=FIRST.select("x").to_pandas())
    return cli_project


def test_lock_pins_exact_versions_and_status_shows_new_data(project: Path, cli: Cli) -> None:
    """The lock file is sorted TOML naming version and digest of each thing pinned; a new
    version of a pinned dataset makes `status` exit 3 and `lock` moves the pin."""
    res = cli("lock", "train", "clf@latest", "rows", "--json")
    assert res.code == 0, res.stderr
    text = (project / "shipyard.lock").read_text()
    doc = tomllib.loads(text)
    with shipyard.open_project(project) as p:
        train, clf = p.datasets.get("train@1"), p.models.get("clf@1")
        assert doc["dataset"] == [
            {
                "name": "train",
                "ref": "train@latest",
                "version": 1,
                "digest": train.digest,
                "kind": "table",
                "path": "data/train.parquet",
            }
        ]
        assert doc["contract"][0]["version"] == 1
        assert (doc["model"][0]["ref"], doc["model"][0]["digest"]) == ("clf@latest", clf.digest)
        # Kinds come in a fixed order, so a change reads as a small diff.
        assert text.index("[[dataset]]") < text.index("[[contract]]") < text.index("[[model]]")

        assert cli("status").code == 0
        p.datasets.add("train", SECOND)
    res = cli("status", "--json")
    assert res.code == 3
    by_name = {s["pin"]["name"]: s for s in res.json()["pins"]}
    assert (by_name["train"]["state"], by_name["train"]["resolves_to"]) == ("changed", 2)
    assert by_name["clf"]["state"] == "current"
    assert by_name["train"]["workspace"] == "missing"

    res = cli("lock")  # re-resolves every pin
    assert res.code == 0
    assert "changed dataset:train: 1 -> 2" in res.stdout
    assert tomllib.loads((project / "shipyard.lock").read_text())["dataset"][0]["version"] == 2
    assert cli("status").code == 0


def test_old_commit_checks_out_old_bytes_and_runs_record_the_lock(
    project: Path, cli: Cli, tmp_path: Path
) -> None:
    """git checkout of an older lock, then `shipyard checkout`, gives the older bytes; a user's
    own edit is never overwritten without --force; runs carry the lock's digest."""
    _git(project, "init", "-q")
    assert cli("lock", "train").code == 0
    _git(project, "add", "shipyard.lock")
    _git(project, "commit", "-qm", "pin train@1")
    res = cli("checkout", "--json")
    assert [d["action"] for d in res.json()["datasets"]] == ["written"]
    with shipyard.open_project(project) as p:
        old_bytes = (project / "data/train.parquet").read_bytes()
        assert pl.read_parquet(project / "data/train.parquet").equals(FIRST)
        lock_digest = p.locks.get().digest
        with p.start_run("clf") as run:
            pass
        assert p.runs.get(run.id).tags["shipyard.lock_digest"] == lock_digest

        p.datasets.add("train", SECOND)
    assert cli("lock").code == 0
    _git(project, "commit", "-qam", "pin train@2")
    assert cli("checkout").code == 0
    assert pl.read_parquet(project / "data/train.parquet").equals(SECOND)

    _git(project, "checkout", "-q", "HEAD~1", "--", "shipyard.lock")
    res = cli("checkout", "--json")  # the file holds train@2: another version, replaced
    assert res.code == 0, res.stderr
    assert (project / "data/train.parquet").read_bytes() == old_bytes
    assert cli("checkout", "--json").json()["datasets"][0]["action"] == "unchanged"

    (project / "data/train.parquet").write_bytes(b"my own edits")
    res = cli("checkout")
    assert res.code == 1 and "--force" in res.stderr
    assert (project / "data/train.parquet").read_bytes() == b"my own edits"
    assert cli("status", "--json").json()["pins"][0]["workspace"] == "modified"
    assert cli("checkout", "--force").code == 0
    assert (project / "data/train.parquet").read_bytes() == old_bytes

    elsewhere = tmp_path / "cache"
    assert cli("checkout", "--to", elsewhere).code == 0
    assert (elsewhere / "train.parquet").read_bytes() == old_bytes


def test_lock_refuses_unknown_and_ambiguous_names(project: Path, cli: Cli) -> None:
    """A name of nothing, or of two kinds at once, is refused with the way out."""
    res = cli("lock", "nothing")
    assert res.code == 1 and "no dataset, contract or model named 'nothing'" in res.stderr
    with shipyard.open_project(project) as p:
        p.contracts.add("train", infer_contract(FIRST))
    res = cli("lock", "train")
    assert res.code == 1 and "dataset:train or contract:train" in res.stderr
    assert cli("lock", "dataset:train", "contract:train").code == 0
    res = cli("lock", "dataset:train", "--path", "../outside.parquet")
    assert res.code == 1 and "inside it" in res.stderr
    assert not (project.parent / "outside.parquet").exists()


def test_file_tree_pins_check_out_as_a_folder(cli_project: Path, cli: Cli) -> None:
    """A file-tree dataset is checked out as a folder with its exact files; a folder with a
    file of the user's own is left alone without --force."""
    source = cli_project.parent / "images"
    (source / "a").mkdir(parents=True)
    (source / "a" / "one.txt").write_text("one")
    (source / "two.txt").write_text("two")
    assert cli("data", "add", "images", source).code == 0
    assert cli("lock", "images").code == 0
    with shipyard.open_project(cli_project) as p:
        digest = p.datasets.get("images@1").digest
    assert tomllib.loads((cli_project / "shipyard.lock").read_text())["dataset"][0] == {
        "name": "images",
        "ref": "images@latest",
        "version": 1,
        "digest": digest,
        "kind": "files",
        "path": "data/images",
    }
    assert cli("checkout").code == 0
    folder = cli_project / "data" / "images"
    assert (folder / "a" / "one.txt").read_text() == "one"
    assert cli("status", "--json").json()["pins"][0]["workspace"] == "ok"

    (folder / "notes.txt").write_text("mine")
    res = cli("checkout")
    assert res.code == 1 and str(folder) in res.stderr
    assert (folder / "notes.txt").exists()
    assert cli("checkout", "--force").code == 0
    assert sorted(p.name for p in folder.rglob("*.txt")) == ["one.txt", "two.txt"]


PIPELINE = """
from shipyard import pipeline, step
from shipyard.pipelines import current, dataset, model


@step
def count(table) -> int:
    rows = table.to_polars().height
    current().run.log_metric("rows", rows)
    return rows


@step
def named(m) -> str:
    return m.ref


@pipeline
def train_clf(data=dataset("train"), clf=model("clf@latest")):
    count(data)
    named(clf)


@pipeline
def first_only(data=dataset("train@1")):
    count(data)


@pipeline
def both(data=dataset("train"), old=dataset("train@1")):
    count(data)
    named(old)
"""

YAML = """
pipeline: yaml_count
steps:
  count:
    call: pipeline.py:count
    inputs: {table: dataset:train}
"""


def _rows(project: Path, run: dict[str, object]) -> float:
    """The row count the pipeline run's `count` step read."""
    steps = {s["name"]: s for s in run["steps"]}  # type: ignore[attr-defined]
    with shipyard.open_project(project) as p:
        return p.runs.get(steps["count"]["run_id"]).metrics["rows"]


def test_pipeline_runs_read_and_extend_the_lock(project: Path, cli: Cli) -> None:
    """A run in a locked project adds the inputs the lock lacks, reads those it pins at the
    pinned version (so an old commit's lock gives the old data), and says which; --no-lock
    leaves the file alone and reads the registry's latest."""
    (project / "pipeline.py").write_text(PIPELINE)
    _git(project, "init", "-q")
    assert cli("lock", "rows").code == 0
    res = cli("pipeline", "run", "pipeline.py:train_clf", "--json")
    assert res.code == 0, res.stderr
    run = res.json()
    assert run["lock"]["added"] == {"dataset:train": "train@1", "model:clf@latest": "clf@1"}
    assert run["lock"]["read"] == {}
    doc = tomllib.loads((project / "shipyard.lock").read_text())
    assert [(d["name"], d["ref"], d["version"]) for d in doc["dataset"]] == [
        ("train", "train@latest", 1)
    ]
    assert [m["ref"] for m in doc["model"]] == ["clf@latest"]
    assert [c["name"] for c in doc["contract"]] == ["rows"]  # the pin given before is kept
    with shipyard.open_project(project) as p:
        lock = p.locks.get()
        assert run["lock"]["digest"] == lock.digest
        assert p.runs.get(run["id"]).tags["shipyard.lock_digest"] == lock.digest
    status = cli("status", "--json")
    assert status.code == 0
    assert sorted(s["pin"]["ref"] for s in status.json()["pins"]) == [
        "clf@latest",
        "rows@latest",
        "train@latest",
    ]
    _git(project, "add", "shipyard.lock")
    _git(project, "commit", "-qm", "pin the pipeline's inputs")
    locked_bytes = (project / "shipyard.lock").read_bytes()

    with shipyard.open_project(project) as p:
        p.datasets.add("train", SECOND)
    res = cli("pipeline", "run", "pipeline.py:train_clf", "--no-cache", "--json")
    assert res.code == 0, res.stderr
    run = res.json()
    assert run["lock"]["read"] == {"dataset:train": "train@1", "model:clf@latest": "clf@1"}
    assert run["lock"]["added"] == {}
    assert _rows(project, run) == FIRST.height
    assert (project / "shipyard.lock").read_bytes() == locked_bytes
    assert cli("status").code == 3  # train@latest now means 2

    assert cli("lock").code == 0
    res = cli("pipeline", "run", "pipeline.py:train_clf", "--no-cache", "--json")
    assert _rows(project, res.json()) == SECOND.height
    _git(project, "checkout", "-q", "HEAD", "--", "shipyard.lock")
    res = cli("pipeline", "run", "pipeline.py:train_clf", "--no-cache")
    assert res.code == 0, res.stderr
    assert "shipyard.lock: 2 read at their pinned versions" in res.stdout
    runs = cli("pipeline", "runs", "--json").json()
    with shipyard.open_project(project) as p:
        newest = p.pipelines.get(runs[0]["id"])
        assert newest.lock is not None and newest.lock.read["dataset:train"] == "train@1"
        assert _rows(project, newest.to_dict()) == FIRST.height

    res = cli("pipeline", "run", "pipeline.py:train_clf", "--no-cache", "--no-lock", "--json")
    assert res.json()["lock"] is None
    assert _rows(project, res.json()) == SECOND.height
    assert (project / "shipyard.lock").read_bytes() == locked_bytes

    # The code now reads another reference of a pinned name: the pin follows the code.
    res = cli("pipeline", "run", "pipeline.py:first_only")
    assert res.code == 0, res.stderr
    assert "shipyard.lock: 0 read at their pinned versions, 1 replaced" in res.stdout
    assert "    replaced  dataset:train@1 = train@1" in res.stdout
    doc = tomllib.loads((project / "shipyard.lock").read_text())
    assert [(d["ref"], d["version"]) for d in doc["dataset"]] == [("train@1", 1)]


def test_lock_pins_a_pipelines_inputs(project: Path, cli: Cli) -> None:
    """`shipyard lock FILE.py:NAME` (or a YAML pipeline) pins what the pipeline reads, beside
    the other references named; a pipeline file that does not exist is named as such."""
    (project / "pipeline.py").write_text(PIPELINE)
    (project / "flow.yaml").write_text(YAML)
    res = cli("lock", "pipeline.py:train_clf", "rows", "--json")
    assert res.code == 0, res.stderr
    assert sorted(res.json()["added"]) == ["contract:rows", "dataset:train", "model:clf"]
    assert [(p["kind"], p["ref"], p["version"]) for p in res.json()["pins"]] == [
        ("dataset", "train@latest", 1),
        ("contract", "rows@latest", 1),
        ("model", "clf@latest", 1),
    ]
    assert cli("status").code == 0
    (project / "shipyard.lock").unlink()
    res = cli("lock", "flow.yaml", "--json")
    assert res.code == 0, res.stderr
    assert [p["ref"] for p in res.json()["pins"]] == ["train@latest"]
    res = cli("lock", "missing.py:train")
    assert res.code == 1 and "no pipeline file missing.py" in res.stderr

    # One name read under two references: the lock holds the first, the run says so.
    assert cli("lock", "pipeline.py:both").code == 0
    with shipyard.open_project(project) as opened:
        assert [p.ref for p in opened.locks.get().pins] == ["train@latest"]
    run = cli("pipeline", "run", "pipeline.py:both", "--json").json()
    assert run["lock"]["read"] == {"dataset:train": "train@1"}
    assert run["lock"]["unpinned"] == {"dataset:train@1": "train@1"}

    # A pin whose digest is not the registry's is refused before any step runs.
    lock = project / "shipyard.lock"
    with shipyard.open_project(project) as opened:
        real = opened.datasets.get("train@1").digest
    lock.write_text(lock.read_text().replace(real, "blake3:" + "0" * 64))
    res = cli("pipeline", "run", "pipeline.py:both")
    assert res.code == 3 and "the lock pins blake3:000" in res.stderr


def test_concurrent_pins_are_all_kept(project: Path) -> None:
    """Several runs pinning at once (pipelines started together; threads here, each with
    its own project) each keep their pin: the lock file is read, changed and written by one
    at a time."""
    import threading

    names = [f"part{i}" for i in range(6)]
    with shipyard.open_project(project) as p:
        for name in names:
            p.datasets.add(name, FIRST)
        p.locks.lock(["train"])
    start = threading.Barrier(len(names))
    failures: list[BaseException] = []

    def pin(name: str) -> None:
        try:
            with shipyard.open_project(project) as p:
                start.wait(timeout=30)
                p.locks.pin_inputs([("dataset", name)])
        except BaseException as exc:  # reported below, not lost in the thread
            failures.append(exc)

    threads = [threading.Thread(target=pin, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not failures, failures
    pinned = {d["name"] for d in tomllib.loads((project / "shipyard.lock").read_text())["dataset"]}
    assert pinned == {"train", *names}


def test_a_lock_file_held_too_long_is_a_clear_conflict(
    project: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While another process changes shipyard.lock, `shipyard lock` waits for it, and after
    LOCK_WAIT seconds says who holds what instead of waiting for ever (exit 1); the file is
    as it was."""
    from filelock import FileLock

    from shipyard.data import lock

    assert cli("lock", "train").code == 0
    before = (project / "shipyard.lock").read_bytes()
    monkeypatch.setattr(lock, "LOCK_WAIT", 0.2)
    with FileLock(project / ".shipyard" / "shipyard.lock.flock"):
        res = cli("lock", "rows")
    assert res.code == 1
    assert "another shipyard process has been changing shipyard.lock" in res.stderr
    assert (project / "shipyard.lock").read_bytes() == before
    assert cli("lock", "rows").code == 0
