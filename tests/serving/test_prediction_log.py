"""The prediction log's hand-over to its writer process: everything handed over before
``close`` is stored, what cannot be stored is counted as dropped, and a request never
waits or fails because of the log."""

from __future__ import annotations

import time

import orjson

from shipyard.project import Project
from shipyard.serving.prediction_log import PredictionLog

MODEL = "credit-risk"


def answers(first: int, rows: int, body: bytes | None = None) -> tuple:  # type: ignore[type-arg]
    ids = [f"{first + i:032x}" for i in range(rows)]
    records = [{"age": 30 + i, "city": "Paris"} for i in range(rows)]
    body = orjson.dumps({"records": records}) if body is None else body
    now = int(time.time() * 1000)
    return (ids, now, f"{MODEL}@1", False, body, "/predict", [i % 2 for i in range(rows)], 1.5)


def test_every_row_handed_over_is_stored_with_its_inputs(project: Project) -> None:
    """Requests of one and of many rows, by records and by MLflow's dataframe_split, come
    back from ``predictions()`` row by row with the inputs the client sent."""
    log = PredictionLog(project, MODEL, flush_seconds=0.05)
    log.put_answers(answers(0, 1))
    log.put_answers(answers(1, 3))
    split = {"dataframe_split": {"columns": ["age", "city"], "data": [[71, "Lyon"]]}}
    log.put_answers(answers(4, 1, orjson.dumps(split)))
    log.close()
    assert (log.written, log.dropped) == (5, 0)
    frame = project.predictions.list(MODEL)
    assert frame["request_id"].tolist() == [f"{i:032x}" for i in range(5)]
    assert frame["inputs"].tolist() == [
        {"age": 30, "city": "Paris"},
        {"age": 30, "city": "Paris"},
        {"age": 31, "city": "Paris"},
        {"age": 32, "city": "Paris"},
        {"age": 71, "city": "Lyon"},
    ]
    assert frame["output"].tolist() == [0, 0, 1, 0, 0]


def test_a_request_the_writer_cannot_read_is_dropped_and_counted_the_rest_stored(
    project: Project,
) -> None:
    log = PredictionLog(project, MODEL, flush_seconds=0.05)
    log.put_answers(answers(0, 2))
    log.put_answers(answers(2, 1, b'{"not": "records"}'))
    log.put_answers(answers(3, 2))
    log.close()
    assert (log.written, log.dropped) == (4, 1)
    assert log.last_error is not None and "records" in log.last_error
    assert len(project.predictions.list(MODEL)) == 4


def test_a_full_buffer_drops_and_counts_without_blocking(project: Project) -> None:
    dropped: list[int] = []
    log = PredictionLog(project, MODEL, max_queue=3, flush_seconds=30, on_drop=dropped.append)
    log.put_answers(answers(0, 2))
    log.put_answers(answers(2, 2))  # 4 rows would exceed 3: dropped at once
    log.put_answers(answers(4, 1))
    log.close()
    assert dropped == [2]
    assert (log.written, log.dropped) == (3, 2)


def test_when_the_writer_process_dies_rows_are_counted_as_dropped(project: Project) -> None:
    """The server goes on answering: handing over to a dead writer counts the rows as
    dropped, and nothing raises."""
    dropped: list[int] = []
    log = PredictionLog(project, MODEL, flush_seconds=0.05, on_drop=dropped.append)
    log._writer.kill()
    log._writer.wait()
    for i in range(3):
        log.put_answers(answers(10 * i, 2))
        time.sleep(0.1)
    log.close()
    assert log.written == 0
    assert sum(dropped) == log.dropped == 6
    assert log.last_error is not None


def test_what_is_buffered_becomes_segments_of_about_batch_rows(project: Project) -> None:
    """25 requests of 10 rows with ``batch_rows=100``: three segments (100, 100, 50)."""
    from sqlalchemy import select

    from shipyard.stores.db.tables import prediction_segments

    log = PredictionLog(project, MODEL, batch_rows=100, flush_seconds=30)
    for i in range(25):
        log.put_answers(answers(10 * i, 10))
    log.close()  # hands everything over at once
    assert log.written == 250
    with project.db.read() as conn:
        sizes = conn.execute(
            select(prediction_segments.c.rows).order_by(prediction_segments.c.id)
        ).scalars()
        assert list(sizes) == [100, 100, 50]
    assert len(project.predictions.list(MODEL)) == 250


def test_a_server_killed_mid_hand_over_loses_only_the_frame_in_flight(project: Project) -> None:
    """The writer process stores every complete frame it received, ignores a frame cut
    short when its server died, and exits once the pipe closes, even with nobody left to
    read its reports."""
    import os
    import subprocess
    import sys

    from shipyard.serving.logwriter import frame

    env = {
        **os.environ,
        "SHIPYARD_DB_URL": project.settings.db_url,
        "SHIPYARD_ARTIFACTS_URI": project.settings.artifacts_uri,
    }
    writer = subprocess.Popen(
        [sys.executable, "-m", "shipyard.serving.logwriter", str(project.root), MODEL, "100"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    assert writer.stdin is not None and writer.stdout is not None
    writer.stdin.write(frame([answers(0, 3), answers(3, 2)]))
    cut = frame([answers(5, 4)])
    writer.stdin.write(cut[: len(cut) // 2])
    writer.stdout.close()  # the server is gone: nobody reads the reports
    writer.stdin.close()
    assert writer.wait(60) == 0
    frame_ids = project.predictions.list(MODEL)["request_id"].tolist()
    assert frame_ids == [f"{i:032x}" for i in range(5)]


def test_segments_are_owned_so_gc_keeps_them_and_verify_names_them(project: Project) -> None:
    """A stored segment is a referenced blob: ``shipyard gc`` with no grace period leaves it,
    the log still reads back, and ``shipyard verify`` counts nothing unreferenced."""
    log = PredictionLog(project, MODEL, flush_seconds=0.05)
    log.put_answers(answers(0, 3))
    log.close()
    assert log.written == 3
    removed = project.gc(grace_seconds=0)
    assert removed.blobs == []
    assert len(project.predictions.list(MODEL)) == 3
    report = project.verify()
    assert report.ok and report.unreferenced == 0


def test_flush_hands_the_buffer_over_at_once_and_settled_tells_when_it_is_stored(
    project: Project,
) -> None:
    """With a flush interval of a minute, ``flush()`` hands the buffered rows to the writer
    at once, and ``settled(mark)`` turns true once they are in the table (rows buffered
    later are not waited for)."""
    log = PredictionLog(project, MODEL, flush_seconds=60)
    try:
        log.put_answers(answers(0, 3))
        mark = log.flush()
        assert mark == 3
        deadline = time.monotonic() + 60
        while not log.settled(mark):
            assert time.monotonic() < deadline, "the flushed rows were not written in 60 s"
            time.sleep(0.05)
        assert log.written == 3
        log.put_answers(answers(3, 1))
        assert log.settled(mark)
        assert len(project.predictions.list(MODEL)) == 3
    finally:
        log.close()
    assert log.written == 4
