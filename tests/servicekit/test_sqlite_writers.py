"""On SQLite, writers waiting for the write lock never hold up reads: a worker's
writers take turns before they take a pooled connection, and one that waits
too long is an error the services answer 503."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

import servicekit.db
from servicekit.db import read, tune_sqlite, unavailability_errors, writing

WAIT = 1.0  # seconds a writer may wait, instead of WRITE_WAIT_SECONDS: a quick test


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "shop.db"


@pytest.fixture
def engine(path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setattr(servicekit.db, "WRITE_WAIT_SECONDS", WAIT)
    # A read waits for a pooled connection a tenth of what a writer may wait
    # for the lock: a read stuck behind writers fails instead of waiting them out.
    engine = create_engine(f"sqlite:///{path}", pool_timeout=WAIT / 10)
    tune_sqlite(engine)
    with writing(engine) as connection:
        connection.execute(text("CREATE TABLE lines (n INTEGER)"))
        connection.execute(text("INSERT INTO lines VALUES (1)"))
    yield engine
    engine.dispose()


@pytest.fixture
def outside_writer(path: Path) -> Iterator[sqlite3.Connection]:
    """An operator's open write transaction, as from the sqlite3 shell."""
    outside = sqlite3.connect(path, isolation_level=None)
    outside.execute("BEGIN IMMEDIATE")
    yield outside
    outside.rollback()
    outside.close()


def try_writes(engine: Engine, count: int) -> tuple[list[threading.Thread], list[Exception]]:
    """`count` writers at once, each on a thread of its own: the threads, and
    what the writers raised (filled in as they end)."""
    raised: list[Exception] = []

    def write() -> None:
        try:
            with writing(engine) as connection:
                connection.execute(text("INSERT INTO lines VALUES (2)"))
        except Exception as error:  # what the request would have answered with
            raised.append(error)

    threads = [threading.Thread(target=write) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads, raised


def test_reads_go_on_while_many_writers_wait_for_an_outside_write_lock(
    engine: Engine, outside_writer: sqlite3.Connection
) -> None:
    writers, raised = try_writes(engine, 30)  # twice the pool's 15 connections
    time.sleep(WAIT / 5)  # they are all waiting now

    counts = [read(engine, text("SELECT count(*) FROM lines"))[0][0] for _ in range(20)]
    still_waiting = sum(writer.is_alive() for writer in writers)
    for writer in writers:
        writer.join()

    assert still_waiting > 0  # the reads ran while writers waited
    assert counts == [1] * 20
    assert len(raised) == 30
    assert all(isinstance(error, unavailability_errors(engine)) for error in raised)


def test_writers_write_once_the_outside_lock_is_gone(
    engine: Engine, outside_writer: sqlite3.Connection
) -> None:
    outside_writer.rollback()

    writers, raised = try_writes(engine, 10)
    for writer in writers:
        writer.join()

    assert raised == []
    assert read(engine, text("SELECT count(*) FROM lines"))[0][0] == 11


def test_a_writer_waits_no_longer_than_it_may_for_its_turn(engine: Engine) -> None:
    with writing(engine):  # this worker's turn, held
        started = time.monotonic()
        with pytest.raises(unavailability_errors(engine), match="no turn to write"):
            with writing(engine):
                pass
        waited = time.monotonic() - started

    assert waited >= WAIT * 0.9
