"""A private, throw-away PostgreSQL cluster for tests.

    with PostgresServer() as pg:
        url = pg.create_database("wharf_test")   # postgresql+psycopg://postgres@127.0.0.1:PORT/wharf_test

The cluster lives in its own directory under /tmp (``/tmp/wharf-pg-XXXXXXXX``, mode 0755),
listens on 127.0.0.1 on a free port, has its unix socket in that directory, trusts every
local connection as user ``postgres`` and trades durability for speed (fsync, synchronous
commit and full page writes off).  ``stop()`` shuts it down and deletes the directory.

``initdb`` refuses to run as root, so when the tests run as root (as they do in CI) the
directory is chowned to the ``postgres`` system user and initdb/pg_ctl run as that user
through ``runuser`` (or ``su``).  Binaries are found by :func:`find_pg_bin`; when there are
none, ``bash scripts/ensure-postgres.sh`` installs them (``make test`` runs it).
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
import weakref
from pathlib import Path

from .net import free_port

__all__ = ["PostgresServer", "PostgresError", "find_pg_bin"]

_SERVER_BINS = ("initdb", "pg_ctl", "postgres")
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes; leave room for "/.s.PGSQL.NNNNN"


class PostgresError(RuntimeError):
    """initdb/pg_ctl failed, or no PostgreSQL binaries were found."""


def _has_server_bins(d: Path) -> bool:
    return all(os.access(d / name, os.X_OK) for name in _SERVER_BINS)


def _version_key(p: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/<version>/bin
    return tuple(int(x) for x in re.findall(r"\d+", p.parent.name)) or (0,)


def find_pg_bin() -> Path | None:
    """Directory holding PostgreSQL's ``initdb``, ``pg_ctl`` and ``postgres``, or None.

    Order: ``$WHARF_PG_BIN``; ``pg_ctl`` on PATH, resolved through symlinks (on these
    machines /usr/local/bin/pg_ctl is a symlink into /usr/lib/postgresql/15/bin) so that
    all three come from one installation; then /usr/lib/postgresql/*/bin, newest first.
    """
    env = os.environ.get("WHARF_PG_BIN")
    if env and _has_server_bins(Path(env)):
        return Path(env)
    on_path = shutil.which("pg_ctl")
    if on_path:
        d = Path(on_path).resolve().parent
        if _has_server_bins(d):
            return d
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    for d in candidates:
        if _has_server_bins(d):
            return d
    return None


def _server_user() -> pwd.struct_passwd | None:
    """The unprivileged user that runs the server when we are root (None when not root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresError("running as root but there is no 'postgres' (or 'nobody') user to run PostgreSQL as")


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


_live: "weakref.WeakSet[PostgresServer]" = weakref.WeakSet()


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_live):
        try:
            server.stop()
        except Exception:
            pass


class PostgresServer:
    """A private PostgreSQL cluster; a context manager (``with PostgresServer() as pg: ...``).

    Attributes once started: ``url`` (SQLAlchemy URL of the ``postgres`` database),
    ``host`` ("127.0.0.1"), ``port``, ``user`` ("postgres"), ``dir`` (cluster directory,
    also the unix-socket directory), ``data_dir``, ``log_path``, ``bin_dir``.

    ``base_dir`` is where to create the cluster directory; it is used only if the server
    user can reach it and the socket path stays short enough, otherwise /tmp is used
    (pytest's tmp_path under /tmp/pytest-of-root is 0700 and unreachable for ``postgres``).
    ``port=None`` picks a free port (and retries with another if it is taken meanwhile).
    """

    host = "127.0.0.1"
    user = "postgres"

    def __init__(self, base_dir: Path | str | None = None, port: int | None = None, *, start_timeout: float = 60.0):
        self.base_dir = Path(base_dir) if base_dir is not None else None
        self.port: int | None = port
        self._fixed_port = port is not None
        self.start_timeout = start_timeout
        self.bin_dir: Path | None = None
        self.dir: Path | None = None
        self.data_dir: Path | None = None
        self.log_path: Path | None = None
        self.url: str = ""
        self._running = False
        self._lock = threading.Lock()
        self._runas = _server_user()

    # -- context manager ---------------------------------------------------------------
    def __enter__(self) -> "PostgresServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self._running else "stopped"
        return f"<PostgresServer {self.host}:{self.port} {self.dir} {state}>"

    # -- URLs ----------------------------------------------------------------------------
    def url_for(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL (psycopg 3 driver) of database ``dbname`` on this server."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{dbname}"

    def conninfo(self, dbname: str = "postgres") -> str:
        """libpq connection string for ``psycopg.connect``."""
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname} connect_timeout=10"

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if self._running:
                return
            bin_dir = find_pg_bin()
            if bin_dir is None:
                raise PostgresError(
                    "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH nor in /usr/lib/postgresql/*/bin; "
                    "run `bash scripts/ensure-postgres.sh` (or `make test`, which runs it), or set WHARF_PG_BIN"
                )
            self.bin_dir = bin_dir
            self.dir = self._make_dir()
            self.data_dir = self.dir / "data"
            self.log_path = self.dir / "postgresql.log"
            try:
                self._initdb()
                self._start_with_retries()
            except BaseException:
                self._cleanup_dir()
                raise
            self._running = True
            self.url = self.url_for("postgres")
            _live.add(self)

    def stop(self) -> None:
        with self._lock:
            if self.dir is None:
                return
            if self._running:
                self._running = False
                _live.discard(self)
                res = self._pg_ctl(["-m", "fast", "-w", "-t", "30", "stop"], check=False, timeout=60)
                if res.returncode != 0:
                    self._pg_ctl(["-m", "immediate", "-w", "-t", "30", "stop"], check=False, timeout=60)
                    self._kill_postmaster()
            self._cleanup_dir()

    @property
    def running(self) -> bool:
        return self._running

    # -- databases -------------------------------------------------------------------------
    def create_database(self, name: str | None = None) -> str:
        """Create a new empty database (a unique name is made up when ``name`` is None).

        Returns its SQLAlchemy URL.
        """
        import psycopg
        from psycopg import sql

        if not self._running:
            raise PostgresError("server is not running")
        name = name or f"wharf_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting its sessions first."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    # -- internals -------------------------------------------------------------------------
    def _make_dir(self) -> Path:
        parent = None
        if self.base_dir is not None:
            self.base_dir.mkdir(parents=True, exist_ok=True)
            if len(str(self.base_dir.resolve())) + 20 < _SOCKET_PATH_MAX and self._reachable(self.base_dir):
                parent = str(self.base_dir.resolve())
        d = Path(tempfile.mkdtemp(prefix="wharf-pg-", dir=parent or "/tmp"))
        os.chmod(d, 0o755)
        if self._runas is not None:
            os.chown(d, self._runas.pw_uid, self._runas.pw_gid)
        return d

    def _reachable(self, d: Path) -> bool:
        """Can the server user traverse every directory down to ``d`` (and write in it)?"""
        if self._runas is None:
            return os.access(d, os.W_OK | os.X_OK)
        p = d.resolve()
        for anc in [*reversed(p.parents), p]:
            st = anc.stat()
            if st.st_uid == self._runas.pw_uid:
                ok = st.st_mode & 0o100
            elif st.st_gid == self._runas.pw_gid:
                ok = st.st_mode & 0o010
            else:
                ok = st.st_mode & 0o001
            if not ok:
                return False
        return True  # mkdtemp's dir is then chowned, so writing into d itself is not needed

    def _cmd(self, argv: list[str]) -> list[str]:
        if self._runas is None:
            return argv
        runuser = shutil.which("runuser") or ("/usr/sbin/runuser" if os.path.exists("/usr/sbin/runuser") else None)
        if runuser:
            return [runuser, "-u", self._runas.pw_name, "--", *argv]
        return ["su", self._runas.pw_name, "-s", "/bin/sh", "-c", shlex.join(argv)]

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        env.pop("LANG", None)
        if self._runas is not None:
            env["HOME"] = self._runas.pw_dir or str(self.dir)
        return env

    def _run(self, argv: list[str], *, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cmd = self._cmd(argv)
        # cwd: the server user must be able to read its working directory (initdb and
        # pg_ctl call getcwd()), and the caller's may be e.g. /root.
        res = subprocess.run(
            cmd,
            cwd=self.dir,
            env=self._env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
        if check and res.returncode != 0:
            raise PostgresError(f"{shlex.join(cmd)} exited {res.returncode}:\n{res.stdout}")
        return res

    def _pg_ctl(self, args: list[str], *, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        assert self.bin_dir is not None and self.data_dir is not None
        return self._run([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args], check=check, timeout=timeout)

    def _initdb(self) -> None:
        assert self.bin_dir is not None and self.data_dir is not None and self.dir is not None
        self._run(
            [
                str(self.bin_dir / "initdb"),
                "-D", str(self.data_dir),
                "-A", "trust",
                "-U", self.user,
                "-E", "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            timeout=180,
        )  # fmt: skip
        conf = self.data_dir / "postgresql.conf"
        with open(conf, "a", encoding="utf-8") as fh:
            fh.write("\n# wharf tests\ninclude 'wharf-test.conf'\n")

    def _write_conf(self) -> None:
        assert self.data_dir is not None and self.dir is not None
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.dir}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            "shared_buffers": "64MB",
            "max_wal_size": "1GB",
            "logging_collector": "off",
            "log_min_messages": "warning",
            "log_line_prefix": "'%m [%p] %d '",
        }
        path = self.data_dir / "wharf-test.conf"
        path.write_text("".join(f"{k} = {v}\n" for k, v in settings.items()), encoding="utf-8")
        if self._runas is not None:
            os.chown(path, self._runas.pw_uid, self._runas.pw_gid)

    def _start_with_retries(self) -> None:
        assert self.log_path is not None
        attempts = 1 if self._fixed_port else 5
        last = ""
        for _ in range(attempts):
            if not self._fixed_port:
                self.port = free_port(self.host)
            self._write_conf()
            t = str(max(5, int(self.start_timeout)))
            res = self._pg_ctl(
                ["-l", str(self.log_path), "-w", "-t", t, "start"], check=False, timeout=self.start_timeout + 30
            )
            if res.returncode == 0:
                return
            log = _tail(self.log_path)
            last = f"pg_ctl start exited {res.returncode}:\n{res.stdout}\n--- {self.log_path} ---\n{log}"
            # make sure nothing half-started is left behind before retrying
            self._pg_ctl(["-m", "immediate", "-w", "-t", "10", "stop"], check=False, timeout=30)
            self._kill_postmaster()
            if "already in use" not in log and "could not bind" not in log and "could not create" not in log:
                break
        raise PostgresError(last)

    def _kill_postmaster(self) -> None:
        if self.data_dir is None:
            return
        pidfile = self.data_dir / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            return
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except OSError:
                return
            time.sleep(0.05)

    def _cleanup_dir(self) -> None:
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None
