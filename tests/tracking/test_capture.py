"""What a run captures by itself: git state, environment, and system metrics."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from shipyard._internal.hashing import is_digest
from shipyard.errors import InvalidInputError
from shipyard.tracking.capture import (
    SystemMetricsSampler,
    capture_code,
    capture_environment,
    redact_command,
)

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True, timeout=30
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with one commit of ``train.py``, configured locally."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "--quiet", "--initial-branch=main")
    git(path, "config", "user.email", "ci@example.com")
    git(path, "config", "user.name", "CI")
    git(path, "config", "commit.gpgsign", "false")
    (path / "train.py").write_text("print('train')\n")
    (path / ".gitignore").write_text("*.log\n")
    git(path, "add", "train.py", ".gitignore")
    git(path, "commit", "--quiet", "-m", "first")
    return path


# -- code -------------------------------------------------------------------------------------


@needs_git
def test_clean_repository_gives_commit_branch_and_not_dirty(repo: Path) -> None:
    """The full sha of HEAD, the branch, and a clean tree without a diff digest."""
    code = capture_code(repo)
    assert code == {
        "git": {
            "commit": git(repo, "rev-parse", "HEAD"),
            "branch": "main",
            "dirty": False,
            "diff_digest": None,
        }
    }
    assert len(code["git"]["commit"]) == 40


@needs_git
def test_modified_file_is_dirty_and_digest_follows_the_change(repo: Path) -> None:
    """A modified tracked file makes the tree dirty; another change gives another digest,
    the same change the same digest."""
    (repo / "train.py").write_text("print('train harder')\n")
    first = capture_code(repo)["git"]
    assert first["dirty"] is True
    assert is_digest(first["diff_digest"])
    assert capture_code(repo)["git"]["diff_digest"] == first["diff_digest"]

    (repo / "train.py").write_text("print('train differently')\n")
    second = capture_code(repo)["git"]
    assert second["dirty"] is True
    assert second["diff_digest"] != first["diff_digest"]


@needs_git
def test_untracked_file_is_dirty_and_its_name_counts(repo: Path) -> None:
    """An untracked file makes the tree dirty and its name enters the digest; ignored
    files do not count."""
    (repo / "run.log").write_text("ignored\n")
    assert capture_code(repo)["git"]["dirty"] is False

    (repo / "notes.txt").write_text("new\n")
    first = capture_code(repo)["git"]
    assert first["dirty"] is True and is_digest(first["diff_digest"])
    (repo / "notes.txt").rename(repo / "other.txt")
    assert capture_code(repo)["git"]["diff_digest"] != first["diff_digest"]


@needs_git
def test_subfolder_and_detached_head(repo: Path) -> None:
    """A folder inside the repository reports the repository; a detached HEAD has no
    branch."""
    sub = repo / "src"
    sub.mkdir()
    sha = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "--quiet", "--detach")
    code = capture_code(sub)["git"]
    assert code["commit"] == sha
    assert code["branch"] is None


def test_outside_a_repository_gives_none(tmp_path: Path) -> None:
    """Outside a repository the code version is {"git": None}."""
    assert capture_code(tmp_path) == {"git": None}


def test_missing_folder_or_git_gives_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder that does not exist, or no git on PATH, gives {"git": None} too."""
    assert capture_code(tmp_path / "nowhere") == {"git": None}
    monkeypatch.setenv("PATH", str(tmp_path))
    assert capture_code(Path.cwd()) == {"git": None}


@needs_git
def test_repository_without_commits_gives_none(tmp_path: Path) -> None:
    """A repository without a commit has no code version to record."""
    git(tmp_path, "init", "--quiet")
    assert capture_code(tmp_path) == {"git": None}


def test_default_folder_is_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a path, the current directory is used."""
    monkeypatch.chdir(tmp_path)
    assert capture_code() == {"git": None}


# -- environment ------------------------------------------------------------------------------


def test_environment_has_python_platform_command_and_packages() -> None:
    """The environment names Python, the machine, the command and installed packages."""
    env = capture_environment()
    assert env["python_version"] == ".".join(map(str, sys.version_info[:3]))
    assert env["python_implementation"] == "CPython"
    assert env["platform"] and env["hostname"]
    assert isinstance(env["command"], list)
    assert "shipyard" in env["packages"]
    assert "scikit-learn" in env["packages"]  # names are normalised
    import sklearn

    assert env["packages"]["scikit-learn"] == sklearn.__version__


def test_package_list_is_read_once_and_copied_per_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The package list is read once per process (a package that appears later is not
    listed), and callers get their own copy of it."""
    first = capture_environment()
    dist_info = tmp_path / "site" / "shipyard_late_probe-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: shipyard-late-probe\nVersion: 1.0\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    first["packages"]["shipyard"] = "tampered"
    second = capture_environment()
    assert "shipyard-late-probe" not in second["packages"]
    assert second["packages"]["shipyard"] != "tampered"


def test_command_line_secrets_are_redacted() -> None:
    """Values of secret-looking options and passwords in URLs are not recorded."""
    argv = [
        "train.py",
        "--epochs",
        "3",
        "--api-key",
        "k123",
        "--db-password=hunter2",
        "--data=s3://user:pass@bucket/x",
        "-token",
        "t",
    ]
    assert redact_command(argv) == [
        "train.py",
        "--epochs",
        "3",
        "--api-key",
        "***",
        "--db-password=***",
        "--data=s3://user:***@bucket/x",
        "-token",
        "***",
    ]


# -- system metrics ---------------------------------------------------------------------------


def test_sampler_reports_increasing_steps_and_sane_values() -> None:
    """Samples arrive every interval with steps 0, 1, 2… and plausible values."""
    samples: list[tuple[dict[str, float], int]] = []
    with SystemMetricsSampler(0.05, lambda metrics, step: samples.append((metrics, step))):
        deadline = time.monotonic() + 5
        while len(samples) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert [step for _, step in samples][:3] == [0, 1, 2]
    metrics = samples[0][0]
    assert set(metrics) == {
        "system.cpu_percent",
        "system.memory_rss_mb",
        "system.memory_percent",
    }
    assert metrics["system.cpu_percent"] >= 0
    assert 1 < metrics["system.memory_rss_mb"] < 100_000
    assert 0 < metrics["system.memory_percent"] <= 100


def test_stop_does_not_wait_out_the_interval() -> None:
    """stop() wakes the sampling thread and returns, even an hour before the next sample."""
    sampler = SystemMetricsSampler(3600, lambda metrics, step: None).start()
    stopped = threading.Event()

    def stop() -> None:
        sampler.stop()
        stopped.set()

    threading.Thread(target=stop, daemon=True).start()
    assert stopped.wait(timeout=60), "stop() is still waiting for the hourly sample"
    assert not any(t.name == "shipyard-system-metrics" for t in threading.enumerate())


def test_stop_is_idempotent_and_final() -> None:
    """stop() may be repeated, and no sample follows it."""
    samples: list[int] = []
    sampler = SystemMetricsSampler(0.05, lambda metrics, step: samples.append(step)).start()
    time.sleep(0.12)
    sampler.stop()
    sampler.stop()
    count = len(samples)
    time.sleep(0.12)
    assert len(samples) == count
    assert not any(t.name == "shipyard-system-metrics" for t in threading.enumerate())


def test_restart_continues_the_steps() -> None:
    """Starting again after stop() goes on counting from the last step."""
    steps: list[int] = []
    sampler = SystemMetricsSampler(0.02, lambda metrics, step: steps.append(step))
    for _ in range(2):
        sampler.start()
        deadline = time.monotonic() + 5
        target = len(steps) + 2
        while len(steps) < target and time.monotonic() < deadline:
            time.sleep(0.005)
        sampler.stop()
    assert steps == list(range(len(steps)))


def test_failing_callback_is_logged_once_and_sampling_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An exception in the callback neither kills the thread nor floods the log."""
    calls: list[int] = []

    def callback(metrics: dict[str, float], step: int) -> None:
        calls.append(step)
        raise RuntimeError("sink is down")

    with SystemMetricsSampler(0.02, callback):
        deadline = time.monotonic() + 5
        while len(calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.005)
    assert calls[:3] == [0, 1, 2]
    failures = [r for r in caplog.records if "callback failed" in r.getMessage()]
    assert len(failures) == 1


def test_callback_may_stop_its_own_sampler() -> None:
    """Calling stop() from the callback ends sampling without deadlock."""
    steps: list[int] = []

    def callback(metrics: dict[str, float], step: int) -> None:
        steps.append(step)
        sampler.stop()

    sampler = SystemMetricsSampler(0.02, callback)
    sampler.start()
    time.sleep(0.15)
    assert steps == [0]


@pytest.mark.parametrize("interval", [0, -1.0, float("nan"), "1"])
def test_interval_must_be_positive(interval: object) -> None:
    """A non-positive or non-numeric interval is refused."""
    with pytest.raises(InvalidInputError, match="interval"):
        SystemMetricsSampler(interval, lambda metrics, step: None)  # type: ignore[arg-type]
