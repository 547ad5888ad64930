"""Sessions on SQLite: ``sessions.begin()`` writes under the write lock, a plain session reads without it."""

from __future__ import annotations

import threading

from sqlalchemy import text

from wharf.db import make_engine, make_sessionmaker


def _sessions(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    sessions = make_sessionmaker(engine)
    with sessions.begin() as s:
        s.execute(text("CREATE TABLE t (x INTEGER)"))
        s.execute(text("INSERT INTO t VALUES (1)"))
    return engine, sessions


def _in_thread(fn):
    out: list = []
    th = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    th.start()
    return th, out


def test_a_read_neither_waits_for_a_writer_nor_sees_its_uncommitted_rows(tmp_path):
    engine, sessions = _sessions(tmp_path)
    holding, release = threading.Event(), threading.Event()

    def write():
        with sessions.begin() as s:
            s.execute(text("INSERT INTO t VALUES (2)"))
            holding.set()
            release.wait(30)
        return "committed"

    writer, _ = _in_thread(write)
    assert holding.wait(10)

    def read():
        with sessions() as s:
            return s.execute(text("SELECT count(*) FROM t")).scalar()

    reader, seen = _in_thread(read)
    reader.join(10)  # with BEGIN IMMEDIATE it would wait for the writer (busy timeout: 30 s)
    finished = not reader.is_alive()
    release.set()
    writer.join(10)
    assert finished and seen == [1]
    assert read() == 2
    engine.dispose()


def test_writers_still_queue_behind_each_other(tmp_path):
    engine, sessions = _sessions(tmp_path)
    holding, release = threading.Event(), threading.Event()
    order: list[str] = []

    def first():
        with sessions.begin() as s:
            s.execute(text("SELECT count(*) FROM t")).scalar()  # a read that turns into a write
            holding.set()
            release.wait(30)
            s.execute(text("INSERT INTO t VALUES (2)"))
            order.append("first")

    def second():
        with sessions.begin() as s:
            n = s.execute(text("SELECT count(*) FROM t")).scalar()
            s.execute(text("INSERT INTO t VALUES (:n)"), {"n": n + 10})
            order.append("second")

    a, _ = _in_thread(first)
    assert holding.wait(10)
    b, _ = _in_thread(second)
    b.join(0.5)
    waiting = b.is_alive()  # the second writer waits at BEGIN for the first one's lock
    release.set()
    a.join(10)
    b.join(10)
    assert waiting and order == ["first", "second"]
    with sessions() as s:  # the second one read after the first committed: nothing lost, no "database is locked"
        assert sorted(s.execute(text("SELECT x FROM t")).scalars()) == [1, 2, 12]
    engine.dispose()


def test_a_plain_session_cannot_write(tmp_path):
    engine, sessions = _sessions(tmp_path)
    with sessions() as s:
        s.execute(text("INSERT INTO t VALUES (5)"))
    with sessions() as s:
        assert s.execute(text("SELECT count(*) FROM t")).scalar() == 1
    engine.dispose()
