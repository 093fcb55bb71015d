"""Fixtures shared by the whole suite.

Backends: ``backend`` runs a test once on SQLite and once on PostgreSQL (a fresh schema per
test, so workers of ``pytest -n`` never see each other's rows); ``s3_uri`` gives a fresh bucket
on a local moto server. A test that needs PostgreSQL or S3 is skipped when the service is not
reachable, unless ``SHIPYARD_REQUIRE_SERVICES=1`` (set by CI), which turns the skip into a
failure so a broken service can never pass silently.
"""

from __future__ import annotations

import csv
import logging
import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

import shipyard
from shipyard.project import Project
from shipyard.stores.artifacts import ArtifactStore

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ACTOR = "alice"


def _service_unavailable(what: str, why: str) -> NoReturn:
    if os.environ.get("SHIPYARD_REQUIRE_SERVICES") == "1":
        pytest.fail(
            f"{what} is required (SHIPYARD_REQUIRE_SERVICES=1) but is not usable: {why}",
            pytrace=False,
        )
    pytest.skip(f"{what} not available: {why}")


# -- identity ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def actor(monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test acts as ``alice`` and starts from a clean shipyard environment."""
    monkeypatch.setenv("SHIPYARD_USER", ACTOR)
    for var in (
        "SHIPYARD_PROJECT",
        "SHIPYARD_DB_URL",
        "SHIPYARD_ARTIFACTS_URI",
        "SHIPYARD_KPIS",
        "SHIPYARD_REDIS_URL",
        "SHIPYARD_SERVER",
        "SHIPYARD_TOKEN",
    ):
        monkeypatch.delenv(var, raising=False)
    return ACTOR


@pytest.fixture(autouse=True)
def audit_key_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """No test reads or writes the real ``~/.config``: the config folder, where the audit
    signing key is created, is a fresh temporary one (``XDG_CONFIG_HOME``)."""
    config = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    monkeypatch.delenv("SHIPYARD_AUDIT_KEY_FILE", raising=False)
    return config


# -- PostgreSQL -------------------------------------------------------------------------------


def _psycopg_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


@pytest.fixture(scope="session")
def _pg_admin_engine() -> Iterator[Any]:
    """An engine on the test database, or a skip (a failure under SHIPYARD_REQUIRE_SERVICES)."""
    from sqlalchemy import create_engine, text

    configured = os.environ.get("SHIPYARD_TEST_POSTGRES_URL")
    url = _psycopg_url(configured or DEFAULT_POSTGRES_URL)
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 5})
    except Exception as exc:  # bad URL or missing driver
        _service_unavailable("PostgreSQL", f"{type(exc).__name__}: {exc}")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        engine.dispose()
        source = "SHIPYARD_TEST_POSTGRES_URL" if configured else "the default URL"
        _service_unavailable(
            "PostgreSQL",
            f"cannot connect to {engine.url.render_as_string(hide_password=True)} "
            f"({source}): {type(exc).__name__}",
        )
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def pg_url(_pg_admin_engine: Any) -> str:
    """The URL of the PostgreSQL test database (from SHIPYARD_TEST_POSTGRES_URL)."""
    return str(_pg_admin_engine.url.render_as_string(hide_password=False))


@pytest.fixture
def pg_schema_url(_pg_admin_engine: Any) -> Iterator[str]:
    """A URL whose connections live in a fresh, private schema, dropped after the test."""
    from sqlalchemy import text

    schema = f"t_{uuid.uuid4().hex}"
    with _pg_admin_engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = _pg_admin_engine.url.update_query_dict({"options": f"-csearch_path={schema}"})
    yield str(url.render_as_string(hide_password=False))
    with _pg_admin_engine.begin() as conn:
        # A connection leaked by a test must not hang the whole run.
        conn.execute(text("SET LOCAL lock_timeout = '10s'"))
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


# -- Redis ------------------------------------------------------------------------------------


DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The URL of the Redis test server (SHIPYARD_TEST_REDIS_URL), once it answers a ping;
    tests keep apart by key prefix (each project's own)."""
    configured = os.environ.get("SHIPYARD_TEST_REDIS_URL")
    url = configured or DEFAULT_REDIS_URL
    try:
        import redis
    except ImportError as exc:
        _service_unavailable("Redis", f"the redis package is not installed ({exc})")
    client = redis.Redis.from_url(url, socket_connect_timeout=5)
    try:
        client.ping()
    except Exception as exc:
        source = "SHIPYARD_TEST_REDIS_URL" if configured else "the default URL"
        _service_unavailable("Redis", f"cannot connect to {url} ({source}): {type(exc).__name__}")
    finally:
        client.close()
    return url


# -- S3 (moto) --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A moto S3 server on a free loopback port; yields its endpoint URL."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        _service_unavailable("the moto S3 server", f"moto[server] is not installed ({exc})")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            mp.delenv(var, raising=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@pytest.fixture
def s3_client(s3_server: str) -> Any:
    """A boto3 S3 client on the moto server, for arranging and tampering out of band."""
    import boto3

    return boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")


@pytest.fixture
def s3_uri(s3_server: str, s3_client: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """``s3://<fresh bucket>/store``, with shipyard pointed at the moto endpoint."""
    monkeypatch.setenv("SHIPYARD_S3_ENDPOINT_URL", s3_server)
    bucket = f"shipyard-{uuid.uuid4().hex[:20]}"
    s3_client.create_bucket(Bucket=bucket)
    return f"s3://{bucket}/store"


# -- projects ---------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A metadata database URL: a SQLite file, then a private PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'metadata.db'}"
    return str(request.getfixturevalue("pg_schema_url"))


@pytest.fixture
def project(tmp_path: Path, backend: str) -> Iterator[Project]:
    """A new project on ``backend`` acting as alice, its admin."""
    proj = shipyard.init_project(tmp_path / "proj", db_url=backend)
    try:
        yield proj
    finally:
        proj.close()


@pytest.fixture
def sample_csv(tmp_path: Path) -> Callable[..., Path]:
    """A factory writing small CSV files under ``tmp_path/inputs``.

    ``sample_csv()`` writes a 4-row table (id, amount with one null, city);
    ``sample_csv("x.csv", rows=[{...}, ...])`` writes the given rows;
    ``sample_csv("x.csv", text="a,b\\n1,2\\n")`` writes the text as is.
    """
    folder = tmp_path / "inputs"

    def write(
        name: str = "data.csv",
        rows: Sequence[Mapping[str, Any]] | None = None,
        *,
        text: str | None = None,
    ) -> Path:
        folder.mkdir(exist_ok=True)
        path = folder / name
        if text is not None:
            path.write_text(text, encoding="utf-8")
            return path
        rows = SAMPLE_ROWS if rows is None else rows
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        return path

    return write


SAMPLE_ROWS: list[dict[str, Any]] = [
    {"id": 1, "amount": 10.5, "city": "Oslo"},
    {"id": 2, "amount": "", "city": "Lima"},
    {"id": 3, "amount": 7.25, "city": "Oslo"},
    {"id": 4, "amount": 3.0, "city": "Pune"},
]


# -- observing the stores ---------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectState:
    """What a user could see changing in a project: events, versions, blobs, staging files."""

    events: int
    versions: tuple[str, ...]
    blobs: tuple[str, ...]
    staging: tuple[str, ...]


def _project_state(project: Project) -> ProjectState:
    from sqlalchemy import select

    from shipyard.stores.audit import count_events
    from shipyard.stores.db.tables import dataset_versions, datasets

    with project.db.read() as conn:
        events = count_events(conn)
        versions = tuple(
            f"{r.name}@{r.version}"
            for r in conn.execute(
                select(datasets.c.name, dataset_versions.c.version)
                .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
                .order_by(datasets.c.name, dataset_versions.c.version)
            )
        )
    # Remote stores stage in the shared system temp folder, which is not the project's.
    staging = project.artifacts.staging_dir()
    staged = sorted(p.name for p in staging.iterdir()) if project.artifacts.is_local else []
    return ProjectState(
        events=events,
        versions=versions,
        blobs=tuple(project.artifacts.iter_digests()),
        staging=tuple(staged),
    )


@pytest.fixture
def project_state() -> Callable[[Project], ProjectState]:
    """Snapshot what a project holds, to assert that a failed call wrote nothing."""
    return _project_state


def _corrupt_local_blob(store: ArtifactStore, digest: str) -> Path:
    hx = digest.split(":", 1)[1]
    path = Path(store.uri.removeprefix("file://")).resolve() / "blobs" / hx[:2] / hx[2:]
    path.chmod(0o644)  # blobs are stored read-only
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def _rewrite_audit_chain(project: Project, seq: int, payload: str) -> None:
    from sqlalchemy import select, update

    from shipyard.stores.audit import event_hash
    from shipyard.stores.db.tables import GENESIS_HASH, audit_events, audit_head

    columns = ("seq", "time", "actor", "action", "entity_kind", "entity", "payload")
    with project.db.write() as conn:
        prev = conn.execute(
            select(audit_events.c.hash).where(audit_events.c.seq == seq - 1)
        ).scalar_one_or_none()
        prev = prev or GENESIS_HASH
        later = conn.execute(
            select(audit_events).where(audit_events.c.seq >= seq).order_by(audit_events.c.seq)
        ).all()
        for row in later:
            values = {c: row._mapping[c] for c in columns}
            if row.seq == seq:
                values["payload"] = payload
            new_hash = event_hash(**values, prev_hash=prev)
            conn.execute(
                update(audit_events)
                .where(audit_events.c.seq == row.seq)
                .values(payload=values["payload"], prev_hash=prev, hash=new_hash)
            )
            prev = new_hash
        conn.execute(update(audit_head).where(audit_head.c.id == 1).values(hash=prev))


@pytest.fixture
def rewrite_audit_chain() -> Callable[[Project, int, str], None]:
    """Rewrite an audit event's payload as someone with write access to the database could,
    re-hashing every later event and the head, so that plain ``audit verify`` still passes."""
    return _rewrite_audit_chain


@pytest.fixture
def corrupt_blob() -> Callable[[ArtifactStore, str], Path]:
    """Flip one byte of a blob in a local artifact store, as disk rot would; returns its path."""
    return _corrupt_local_blob
