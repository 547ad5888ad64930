"""curl, the real client of generic repositories, run isolated from this machine's configuration."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

__all__ = ["Curl", "CurlResult"]


@dataclass
class CurlResult:
    returncode: int
    status: int
    headers: dict[str, str]
    body: bytes
    stderr: str

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error(self) -> str:
        """The sentence of a Wharf error answer."""
        return str(json.loads(self.body)["error"])

    def __repr__(self) -> str:
        return f"CurlResult(rc={self.returncode}, status={self.status}, body={self.body[:500]!r}, stderr={self.stderr[-500:]!r})"


class Curl:
    """``curl -q`` (no ~/.curlrc) with HOME in a temp dir and no proxy variables; every call returns the status,
    the response headers (of the last response) and the body."""

    def __init__(self, tmp: Path):
        self.tmp = Path(tmp)
        self.home = self.tmp / "curl-home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.bin = shutil.which("curl") or "curl"
        self._n = 0

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and not k.startswith("CURL")}
        env["HOME"] = str(self.home)
        return env

    def __call__(self, *args: str | Path, output: Path | None = None, timeout: float = 120) -> CurlResult:
        self._n += 1
        head = self.tmp / f"curl-headers-{self._n}"
        body = output or (self.tmp / f"curl-body-{self._n}")
        cmd = [self.bin, "-q", "-sS", "--noproxy", "*", "-D", str(head), "-w", "%{http_code}", "-o", str(body)]
        proc = subprocess.run([*cmd, *map(str, args)], env=self.env(), capture_output=True, timeout=timeout)
        status = int(proc.stdout.decode().strip()[-3:] or 0) if proc.stdout.strip() else 0
        headers: dict[str, str] = {}
        if head.exists():
            blocks = [b for b in head.read_bytes().decode("latin-1").split("\r\n\r\n") if b.strip()]
            for line in (blocks[-1].split("\r\n")[1:] if blocks else []):
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            head.unlink()
        data = body.read_bytes() if body.exists() else b""
        if output is None and body.exists():
            body.unlink()
        return CurlResult(proc.returncode, status, headers, data, proc.stderr.decode(errors="replace"))

    def run(self, args: Sequence[str | Path], timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        """curl with exactly these arguments (isolated), for flags the wrapper does not fit (-C -, --etag-*)."""
        return subprocess.run([self.bin, "-q", "-sS", "--noproxy", "*", *map(str, args)], env=self.env(),
                              capture_output=True, timeout=timeout)
