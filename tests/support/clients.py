"""The real Python clients (pip, uv, twine), run isolated from this machine's configuration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

__all__ = ["clean_env", "pip_install", "uv_pip_install", "twine_upload", "uv_publish", "Result", "BIN"]

BIN = Path(sys.executable).parent


class Result:
    """A finished client run (pip, uv, twine, npm, mvn): its exit code and output; ``repr`` shows the output's tail
    (what a failed ``assert res.ok, res`` prints)."""

    def __init__(self, proc: subprocess.CompletedProcess[str]):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.output = proc.stdout + proc.stderr

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __repr__(self) -> str:
        return f"Result(rc={self.returncode}, output={self.output[-4000:]!r})"


def clean_env(tmp: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """No PIP_*/UV_*/TWINE_* from the machine, no user config, no network beyond what the test passes."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_", "TWINE_", "WHARF_")) and k not in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy")}
    env.update({
        "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1",
        "UV_NO_CONFIG": "1", "UV_CACHE_DIR": str(tmp / "uv-cache"), "UV_PYTHON_DOWNLOADS": "never",
        "HOME": str(tmp / "home"), "NO_COLOR": "1", "PYTHONWARNINGS": "ignore",
    })
    (tmp / "home").mkdir(parents=True, exist_ok=True)
    env.update(extra or {})
    return env


def _run(args: Sequence[str], env: dict[str, str], timeout: float = 180) -> Result:
    return Result(subprocess.run(list(args), env=env, capture_output=True, text=True, timeout=timeout))


def pip_install(tmp: Path, index_url: str, *requirements: str, target: Path | None = None,
                extra_args: Sequence[str] = (), env: dict[str, str] | None = None) -> Result:
    target = target or (tmp / "pip-target")
    return _run([sys.executable, "-m", "pip", "install", "--isolated", "--no-cache-dir", "--disable-pip-version-check",
                 "--no-input", "--index-url", index_url, "--target", str(target), *extra_args, *requirements],
                clean_env(tmp, env))


def uv_pip_install(tmp: Path, index_url: str, *requirements: str, target: Path | None = None,
                   extra_args: Sequence[str] = (), env: dict[str, str] | None = None) -> Result:
    target = target or (tmp / "uv-target")
    return _run([str(BIN / "uv"), "pip", "install", "--no-config", "--python", sys.executable, "--index-url", index_url,
                 "--target", str(target), "--no-cache", *extra_args, *requirements], clean_env(tmp, env))


def twine_upload(tmp: Path, repository_url: str, files: Sequence[Path], *, token: str | None,
                 extra_args: Sequence[str] = (), env: dict[str, str] | None = None) -> Result:
    auth = ["-u", "__token__", "-p", token] if token is not None else ["-u", "", "-p", ""]
    return _run([str(BIN / "twine"), "upload", "--non-interactive", "--disable-progress-bar", "--repository-url",
                 repository_url, *auth, *extra_args, *map(str, files)], clean_env(tmp, env))


def uv_publish(tmp: Path, publish_url: str, files: Sequence[Path], *, token: str,
               extra_args: Sequence[str] = (), env: dict[str, str] | None = None) -> Result:
    return _run([str(BIN / "uv"), "publish", "--no-config", "--publish-url", publish_url, "-u", "__token__", "-p", token,
                 *extra_args, *map(str, files)], clean_env(tmp, env))
