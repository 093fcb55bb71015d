"""Settings and project discovery: defaults < shipyard.toml < SHIPYARD_* < explicit arguments."""

from __future__ import annotations

import getpass
import os
import re
from pathlib import Path

import pytest

import shipyard
from shipyard.config import CONFIG_FILE, Settings, current_actor, find_project_root
from shipyard.errors import ConflictError, InvalidInputError, ProjectNotFoundError


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A folder holding a project created with the default settings."""
    path = tmp_path / "proj"
    shipyard.init_project(path).close()
    return path


def test_init_creates_config_and_state(root: Path) -> None:
    """``init`` writes shipyard.toml and a git-ignored .shipyard folder with the stores."""
    assert (root / CONFIG_FILE).is_file()
    assert (root / ".shipyard" / ".gitignore").read_text() == "*\n"
    assert (root / ".shipyard" / "shipyard.db").is_file()
    assert (root / ".shipyard" / "artifacts").is_dir()
    assert not any(root.glob(f".{CONFIG_FILE}.part"))


def test_init_refuses_an_existing_project(root: Path) -> None:
    """Initialising a folder twice raises ConflictError and leaves the project as it was."""
    before = (root / CONFIG_FILE).read_text()
    with pytest.raises(ConflictError, match="already a shipyard project"):
        shipyard.init_project(root)
    assert (root / CONFIG_FILE).read_text() == before


def test_init_names_the_project_after_its_folder(tmp_path: Path) -> None:
    """Without a name the project is named after its folder, cleaned to a valid name."""
    with shipyard.init_project(tmp_path / "my churn project!") as project:
        assert project.settings.name == "my-churn-project"
    settings = Settings.load(tmp_path / "my churn project!")
    assert settings.name == "my-churn-project"


def test_init_rejects_an_invalid_project_name(tmp_path: Path) -> None:
    """An invalid explicit name raises InvalidInputError and creates nothing."""
    with pytest.raises(InvalidInputError, match="invalid project name"):
        shipyard.init_project(tmp_path / "p", name="bad name")
    assert not (tmp_path / "p").exists()


def test_discovery_walks_up_from_the_current_directory(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside any subfolder of a project, the project is found like git finds a repository."""
    sub = root / "notebooks" / "deep"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    assert find_project_root() == root.resolve()
    with shipyard.open_project() as project:
        assert project.root == root.resolve()


def test_shipyard_project_overrides_the_current_directory(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SHIPYARD_PROJECT wins over the project around the current directory."""
    other = tmp_path / "other"
    shipyard.init_project(other).close()
    monkeypatch.chdir(other)
    monkeypatch.setenv("SHIPYARD_PROJECT", str(root))
    assert find_project_root() == root.resolve()


def test_explicit_path_overrides_shipyard_project(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An explicit path (``--project``) wins over SHIPYARD_PROJECT."""
    other = tmp_path / "other"
    shipyard.init_project(other).close()
    monkeypatch.setenv("SHIPYARD_PROJECT", str(other))
    assert find_project_root(root) == root.resolve()
    with shipyard.open_project(root) as project:
        assert project.root == root.resolve()


def test_missing_project_gives_a_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside any project, opening one raises ProjectNotFoundError saying how to make one."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ProjectNotFoundError) as info:
        shipyard.open_project()
    assert str(tmp_path.resolve()) in info.value.message
    assert "shipyard init" in info.value.message
    assert "--project" in info.value.message


def test_explicit_path_without_project_is_not_found(tmp_path: Path) -> None:
    """An explicit folder without shipyard.toml is reported by name, with the init command."""
    with pytest.raises(ProjectNotFoundError, match="is not a shipyard project") as info:
        shipyard.open_project(tmp_path)
    assert f"shipyard init {tmp_path}" in info.value.message


def test_shipyard_project_without_project_is_not_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SHIPYARD_PROJECT pointing at a non-project is an error, not a silent fallback."""
    monkeypatch.setenv("SHIPYARD_PROJECT", str(tmp_path / "nowhere"))
    with pytest.raises(ProjectNotFoundError, match="nowhere"):
        find_project_root()


def test_defaults_live_in_the_state_folder(root: Path) -> None:
    """By default the database and artifacts live under .shipyard, as absolute locations."""
    settings = Settings.load(root)
    assert settings.db_url == f"sqlite:///{root.resolve() / '.shipyard' / 'shipyard.db'}"
    assert settings.artifacts_uri == str(root.resolve() / ".shipyard" / "artifacts")
    assert settings.state_dir == root.resolve() / ".shipyard"


def test_environment_overrides_the_config_file(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SHIPYARD_DB_URL and SHIPYARD_ARTIFACTS_URI override shipyard.toml."""
    monkeypatch.setenv("SHIPYARD_DB_URL", f"sqlite:///{tmp_path / 'env.db'}")
    monkeypatch.setenv("SHIPYARD_ARTIFACTS_URI", "s3://bucket/prefix")
    settings = Settings.load(root)
    assert settings.db_url == f"sqlite:///{tmp_path / 'env.db'}"
    assert settings.artifacts_uri == "s3://bucket/prefix"


def test_explicit_arguments_override_the_environment(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Arguments passed in code win over SHIPYARD_* variables."""
    monkeypatch.setenv("SHIPYARD_DB_URL", f"sqlite:///{tmp_path / 'env.db'}")
    monkeypatch.setenv("SHIPYARD_ARTIFACTS_URI", str(tmp_path / "env-artifacts"))
    settings = Settings.load(
        root, db_url=f"sqlite:///{tmp_path / 'arg.db'}", artifacts_uri=str(tmp_path / "arg")
    )
    assert settings.db_url == f"sqlite:///{tmp_path / 'arg.db'}"
    assert settings.artifacts_uri == str(tmp_path / "arg")


def test_opened_project_uses_the_environment_stores(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A project opened with SHIPYARD_DB_URL set keeps its metadata in that database."""
    monkeypatch.setenv("SHIPYARD_DB_URL", f"sqlite:///{tmp_path / 'env.db'}")
    monkeypatch.setenv("SHIPYARD_ARTIFACTS_URI", str(tmp_path / "env-artifacts"))
    with shipyard.open_project(root) as project:
        assert project.db.current_revision() is not None
        assert project.artifacts.uri == str(tmp_path / "env-artifacts")
    assert (tmp_path / "env.db").is_file()
    assert (tmp_path / "env-artifacts" / "blobs").is_dir()


def test_relative_locations_resolve_against_the_project_root(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relative sqlite URLs and artifact folders mean the same place from any directory."""
    (root / CONFIG_FILE).write_text(
        '[store]\ndb_url = "sqlite:///state/meta.db"\nartifacts_uri = "state/blobs"\n',
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    settings = Settings.load(root)
    assert settings.db_url == f"sqlite:///{root.resolve() / 'state' / 'meta.db'}"
    assert settings.artifacts_uri == str(root.resolve() / "state" / "blobs")
    monkeypatch.setenv("SHIPYARD_DB_URL", "sqlite:///env/meta.db")
    assert Settings.load(root).db_url == f"sqlite:///{root.resolve() / 'env' / 'meta.db'}"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////var/lib/shipyard/meta.db",
        "sqlite:///:memory:",
        "postgresql+psycopg://u@db.example.com/shipyard",
    ],
)
def test_absolute_and_remote_db_urls_are_kept(root: Path, url: str) -> None:
    """Absolute, in-memory and server URLs are used exactly as given."""
    assert Settings.load(root, db_url=url).db_url == url


def test_file_uri_artifacts_become_a_local_path(root: Path, tmp_path: Path) -> None:
    """A ``file://`` artifact location is a local folder path."""
    settings = Settings.load(root, artifacts_uri=f"file://{tmp_path / 'blobs'}")
    assert settings.artifacts_uri == str(tmp_path / "blobs")


def test_config_file_sets_name_and_store_options(root: Path) -> None:
    """The project name and artifact store options come from shipyard.toml."""
    (root / CONFIG_FILE).write_text(
        '[project]\nname = "churn"\n[store.artifacts_options]\nanon = true\n', encoding="utf-8"
    )
    settings = Settings.load(root)
    assert settings.name == "churn"
    assert settings.artifacts_options == {"anon": True}


def test_invalid_toml_names_the_file(root: Path) -> None:
    """A broken shipyard.toml raises InvalidInputError naming the file."""
    (root / CONFIG_FILE).write_text("[store\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="is not valid TOML") as info:
        Settings.load(root)
    assert str(root / CONFIG_FILE) in info.value.message


def test_actor_comes_from_shipyard_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """SHIPYARD_USER names the acting user; a blank value falls back to the OS user."""
    monkeypatch.setenv("SHIPYARD_USER", " bob ")
    assert current_actor() == "bob"
    monkeypatch.setenv("SHIPYARD_USER", "  ")
    assert current_actor() == getpass.getuser()


def test_init_user_becomes_admin(tmp_path: Path) -> None:
    """The user who runs init is the project's first admin."""
    with shipyard.init_project(tmp_path / "p") as project:
        assert project.actor == os.environ["SHIPYARD_USER"] == "alice"
        me = project.users.whoami()
        assert (me.name, me.role, me.registered) == ("alice", "admin", True)


def test_init_records_explicit_stores(tmp_path: Path) -> None:
    """A project initialised on explicit stores is reopened on the same stores."""
    db_url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    artifacts = str(tmp_path / "elsewhere-artifacts")
    shipyard.init_project(tmp_path / "p", db_url=db_url, artifacts_uri=artifacts).close()
    with shipyard.open_project(tmp_path / "p") as project:
        assert project.settings.db_url == db_url
        assert project.settings.artifacts_uri == artifacts


def test_declared_kpis_come_from_the_config_file_and_the_environment_wins(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`[serving] kpis` in shipyard.toml declares the KPI names; SHIPYARD_KPIS (comma
    separated) overrides it; neither means no declaration."""
    assert Settings.load(root).kpis is None
    cfg = root / CONFIG_FILE
    cfg.write_text(cfg.read_text() + '\n[serving]\nkpis = ["revenue", "churned"]\n')
    assert Settings.load(root).kpis == ("revenue", "churned")
    monkeypatch.setenv("SHIPYARD_KPIS", " clicks , revenue ,")
    assert Settings.load(root).kpis == ("clicks", "revenue")


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        pytest.param('kpis = ["revenue", "net revenue"]', None, "'net revenue' is not", id="toml"),
        pytest.param('kpis = "revenue"', None, "must be a list of names", id="not-a-list"),
        pytest.param(None, "revenue,a{b}", "SHIPYARD_KPIS: 'a{b}' is not a KPI name", id="env"),
    ],
)
def test_an_invalid_declared_kpi_name_is_refused_naming_where_it_is(
    root: Path, monkeypatch: pytest.MonkeyPatch, toml: str | None, env: str | None, message: str
) -> None:
    """A declared KPI name that is not 1 to 64 letters, digits or underscores, or a `kpis`
    that is not a list, is refused when the settings load, naming the file or variable."""
    if toml is not None:
        cfg = root / CONFIG_FILE
        cfg.write_text(cfg.read_text() + f"\n[serving]\n{toml}\n")
    if env is not None:
        monkeypatch.setenv("SHIPYARD_KPIS", env)
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        Settings.load(root)
