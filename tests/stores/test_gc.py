"""``shipyard gc`` never deletes a blob that a write is re-using: neither one that a write in
progress has found already stored, nor one that an add commits while gc is running."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import shipyard
from shipyard.project import Project
from shipyard.stores.artifacts import ArtifactStore

CONTENT = b"a file that an interrupted add left behind\n"
TWO_HOURS = 2 * 3600


def _age_local_blob(store: ArtifactStore, digest: str, seconds: float) -> None:
    """Make a local blob look as if it was written ``seconds`` ago."""
    hx = digest.split(":", 1)[1]
    path = Path(store.uri) / "blobs" / hx[:2] / hx[2:]
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_leftover_blob_found_again_by_a_write_in_progress_survives_gc(
    project: Project,
) -> None:
    """A blob left by an interrupted write is old and unreferenced. A new write that finds
    the same content already stored (and has not committed yet) makes it young again, so
    gc's grace period covers it; the untouched leftover next to it is removed."""
    reused, _ = project.artifacts.put_bytes(CONTENT)
    stale, _ = project.artifacts.put_bytes(b"nobody wants this any more")
    for digest in (reused.digest, stale.digest):
        _age_local_blob(project.artifacts, digest, TWO_HOURS)

    blob, created = project.artifacts.put_bytes(CONTENT)  # a write in progress
    assert (blob.digest, created) == (reused.digest, False)

    report = project.gc()  # default grace period: one hour
    assert report.blobs == [stale.digest]
    assert project.artifacts.exists(reused.digest)
    assert project.artifacts.read_bytes(reused.digest) == CONTENT


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def any_store_project(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> Iterator[Project]:
    """A project on a local artifact folder, then on an S3 bucket (moto)."""
    uri = None if request.param == "local" else str(request.getfixturevalue("s3_uri"))
    proj = shipyard.init_project(tmp_path / "proj", db_url=backend, artifacts_uri=uri)
    try:
        yield proj
    finally:
        proj.close()


def test_a_blob_an_add_commits_while_gc_runs_is_kept(
    any_store_project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gc lists the store, then deletes. An add that commits a reference to an unreferenced
    blob in between (here: right after gc has listed the store) keeps that blob: the dataset
    it added stays whole. With no grace period the blob's age cannot protect it."""
    project = any_store_project
    leftover, _ = project.artifacts.put_bytes(CONTENT)
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "notes.txt").write_bytes(CONTENT)

    listing = project.artifacts.iter_digests

    def listing_then_an_add_commits() -> Iterator[str]:
        yield from listing()
        project.datasets.add("docs", folder)  # another user's add, committing right now

    monkeypatch.setattr(project.artifacts, "iter_digests", listing_then_an_add_commits)
    report = project.gc(grace_seconds=0)
    monkeypatch.undo()

    assert leftover.digest not in report.blobs
    assert project.verify().ok
    restored = project.datasets.export("docs@1", tmp_path / "restored")
    assert (restored / "notes.txt").read_bytes() == CONTENT
