"""Atomic file writes: readers see the old file or the new one, and secrets are never exposed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from shipyard._internal.files import write_bytes_atomic


def test_overwrite_false_refuses_an_existing_file(tmp_path: Path) -> None:
    """Without overwrite an existing file is kept as is and no temporary file is left."""
    dest = tmp_path / "out.json"
    dest.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        write_bytes_atomic(dest, b"new", overwrite=False)
    assert dest.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.json"]


def test_new_file_gets_the_requested_mode(tmp_path: Path) -> None:
    """A file written with mode 0600 is private whatever the umask allows."""
    old = os.umask(0o022)
    try:
        dest = write_bytes_atomic(tmp_path / "secret.pem", b"key", overwrite=False, mode=0o600)
    finally:
        os.umask(old)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert dest.read_bytes() == b"key"


def test_overwrite_replaces(tmp_path: Path) -> None:
    """By default the new content replaces the old in one rename."""
    dest = tmp_path / "out.txt"
    dest.write_bytes(b"old")
    write_bytes_atomic(dest, b"new")
    assert dest.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_without_parents_a_missing_folder_is_not_created(tmp_path: Path) -> None:
    """A file a user named goes only into a folder that exists: none is made on the way."""
    with pytest.raises(FileNotFoundError):
        write_bytes_atomic(tmp_path / "no" / "sub" / "out.txt", b"x", parents=False)
    assert os.listdir(tmp_path) == []
