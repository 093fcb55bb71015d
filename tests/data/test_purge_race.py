"""A purge removes content while another write re-uses the same content: the write is refused
with nothing stored, never committed with its content gone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from shipyard.errors import ConflictError
from shipyard.project import Project


def _frame() -> pl.DataFrame:
    return pl.DataFrame({"customer_id": list(range(30)), "income": [float(i) for i in range(30)]})


def test_a_purge_between_storing_and_committing_refuses_the_write(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``b`` has the content of ``a@1``. Its add finds the blob stored; then, before it
    commits, an admin purges ``a@1`` (nothing else refers to the blob, so it goes). The add
    is refused as a conflict and stores nothing; ``verify`` finds nothing missing; the same
    add run again stores the content anew and reads back."""
    a = project.datasets.add("a", _frame())
    store = project.artifacts
    put_file = store.put_file
    purged: list[Any] = []

    def put_then_purge(path: str | Path, **kwargs: Any) -> Any:
        result = put_file(path, **kwargs)
        if not purged and kwargs.get("digest") == a.digest:
            assert result[1] is False  # found stored: re-used, not written
            purged.append(project.datasets.delete("a@1", purge=True, reason="retention"))
        return result

    monkeypatch.setattr(store, "put_file", put_then_purge)
    with pytest.raises(ConflictError, match="a purge removed content this write re-uses"):
        project.datasets.add("b", _frame())
    assert purged and purged[0].blobs_removed == 1
    assert [d.name for d in project.datasets.list()] == []
    assert project.verify().ok

    monkeypatch.undo()
    b = project.datasets.add("b", _frame())
    assert (b.ref, b.digest) == ("b@1", a.digest)
    assert project.datasets.get("b@1").to_polars().equals(_frame())
    assert project.verify().ok


def test_a_write_that_commits_first_keeps_the_content_from_the_purge(project: Project) -> None:
    """The other order: the write commits its reference before the purge looks, so the purge
    keeps the blob (another version owns it) and both reads work."""
    project.datasets.add("a", _frame())
    b = project.datasets.add("b", _frame())
    done = project.datasets.delete("a@1", purge=True)
    assert done.blobs_removed == 0
    assert project.datasets.get(b.ref).to_polars().equals(_frame())
    events = [e.action for e in project.audit.list()]
    assert "artifacts.remove" not in events
