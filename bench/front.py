"""nginx in front of a running Wharf, configured by contrib/nginx/wharf.conf (X-Accel-Redirect downloads), for run.sh's
target ``wharf-nginx``.  The http-level settings are the nginx-static peer's (shared peers.py), so the two nginx
differ only in what they serve.

    front.py start --upstream 127.0.0.1:PORT --pages DATA/pages --workdir DIR   # prints "PID PORT"
    front.py stop --workdir DIR
"""

from __future__ import annotations

import argparse
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1] / "contrib" / "nginx" / "wharf.conf"

HTTP = """\
{user}
worker_processes auto;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    keepalive_timeout 65;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    default_type application/octet-stream;
{server}
}}
"""


def start(a: argparse.Namespace) -> int:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    prefix = Path(a.workdir).resolve()
    for sub in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    server = (TEMPLATE.read_text().replace("@LISTEN@", f"127.0.0.1:{port} backlog=4096")
              .replace("@UPSTREAM@", a.upstream).replace("@PAGES@", str(Path(a.pages).resolve())))
    if re.search(r"@[A-Z]+@", server):
        raise SystemExit(f"{TEMPLATE}: a placeholder was not replaced")
    # as root, nginx's workers would run as nobody, who may not enter the run's data dir
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
    conf = prefix / "nginx.conf"
    conf.write_text(HTTP.format(user=user, prefix=prefix, server=server))
    cmd = [nginx, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)]
    subprocess.run(cmd + ["-t"], check=True, capture_output=True, timeout=30)
    log = open(prefix / "stdout.log", "ab")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    (prefix / "master.pid").write_text(str(proc.pid))
    deadline = time.time() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            raise SystemExit(f"nginx did not come up: see {prefix / 'error.log'}")
        time.sleep(0.2)
    print(proc.pid, port)
    return 0


def stop(a: argparse.Namespace) -> int:
    pidfile = Path(a.workdir) / "master.pid"
    if not pidfile.exists():
        return 0
    pid = int(pidfile.read_text())
    try:  # only the nginx this script started (its command line names our config)
        if str(Path(a.workdir).resolve() / "nginx.conf") in open(f"/proc/{pid}/cmdline").read():
            os.killpg(pid, signal.SIGTERM)
    except (FileNotFoundError, ProcessLookupError):
        pass
    pidfile.unlink()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start")
    s.add_argument("--upstream", required=True)
    s.add_argument("--pages", required=True)
    s.add_argument("--workdir", required=True)
    t = sub.add_parser("stop")
    t.add_argument("--workdir", required=True)
    a = p.parse_args(argv)
    return start(a) if a.cmd == "start" else stop(a)


if __name__ == "__main__":
    sys.exit(main())
