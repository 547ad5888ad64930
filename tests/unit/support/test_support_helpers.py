"""Tests of the test helpers themselves: tests/support/postgres.py and tests/support/net.py."""

from __future__ import annotations

import http.server
import os
import socket
import stat
import threading
import time
from pathlib import Path

import pytest

from tests.support.net import free_port, wait_http, wait_port
from tests.support.postgres import PostgresServer, find_pg_bin


def _require_pg_bin() -> Path:
    bin_dir = find_pg_bin()
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL binaries missing in CI: scripts/ensure-test-tools.sh should have installed them")
        pytest.skip("PostgreSQL binaries not found (run `bash scripts/ensure-postgres.sh`)")
    return bin_dir


@pytest.mark.postgres
def test_postgres_server_lifecycle(tmp_path: Path) -> None:
    import psycopg
    import sqlalchemy as sa

    _require_pg_bin()
    # tmp_path may be unreachable for the postgres user (0700 parents): the server must cope.
    pg = PostgresServer(tmp_path)
    with pg:
        assert pg.running
        assert pg.dir is not None and pg.dir.is_dir()
        cluster_dir = pg.dir
        assert stat.S_IMODE(cluster_dir.stat().st_mode) == 0o755
        assert pg.url == f"postgresql+psycopg://postgres@127.0.0.1:{pg.port}/postgres"
        # the unix socket is in the cluster directory
        assert (cluster_dir / f".s.PGSQL.{pg.port}").exists()

        url1 = pg.create_database("wharf_one")
        assert url1 == f"postgresql+psycopg://postgres@127.0.0.1:{pg.port}/wharf_one"
        with psycopg.connect(pg.conninfo("wharf_one")) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
            assert conn.execute("show fsync").fetchone() == ("off",)
            assert conn.execute("show synchronous_commit").fetchone() == ("off",)
            assert conn.execute("show full_page_writes").fetchone() == ("off",)
            assert conn.execute("show max_connections").fetchone() == ("200",)
            assert conn.execute("show server_encoding").fetchone() == ("UTF8",)
            conn.execute("create table t (id int primary key, name text)")
            conn.execute("insert into t values (1, 'a')")

        url2 = pg.create_database()  # made-up name
        assert url2 != url1
        engine = sa.create_engine(url2)
        try:
            with engine.connect() as conn:
                assert conn.execute(sa.text("select 1")).scalar_one() == 1
                # a new database is empty: the table made in the other one is not here
                assert conn.execute(sa.text("select to_regclass('public.t')")).scalar_one() is None
        finally:
            engine.dispose()

        pg.drop_database("wharf_one")
        with psycopg.connect(pg.conninfo()) as conn:
            names = {r[0] for r in conn.execute("select datname from pg_database")}
        assert "wharf_one" not in names

    assert not pg.running
    assert not cluster_dir.exists()
    # nothing listens on the port any more
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", pg.port), timeout=1).close()
    pg.stop()  # idempotent


@pytest.mark.postgres
def test_postgres_two_servers_side_by_side() -> None:
    import psycopg

    _require_pg_bin()
    with PostgresServer() as a, PostgresServer() as b:
        assert a.port != b.port
        for pg in (a, b):
            with psycopg.connect(pg.conninfo()) as conn:
                assert conn.execute("select 1").fetchone() == (1,)


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        code = {"/ok": 200, "/missing": 404, "/broken": 503}.get(self.path, 404)
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_wait_http_waits_for_a_late_server() -> None:
    port = free_port()
    servers: list[http.server.ThreadingHTTPServer] = []

    def serve_later() -> None:
        time.sleep(0.5)
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        servers.append(srv)
        srv.serve_forever(poll_interval=0.05)

    t = threading.Thread(target=serve_later, daemon=True)
    t.start()
    try:
        assert wait_http(f"http://127.0.0.1:{port}/ok", timeout=10) == 200
        assert wait_http(f"http://127.0.0.1:{port}/missing", timeout=5) == 404  # < 500 counts as up
        wait_port("127.0.0.1", port, timeout=5)
        with pytest.raises(TimeoutError):
            wait_http(f"http://127.0.0.1:{port}/broken", timeout=0.5)  # 5xx never counts
    finally:
        for srv in servers:
            srv.shutdown()
            srv.server_close()


def test_wait_http_times_out_when_nothing_listens() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        wait_http(f"http://127.0.0.1:{port}/", timeout=0.5)
    assert time.monotonic() - started < 5
