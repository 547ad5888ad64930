"""Resync of proxied packages: re-fetch a package's cached files from the upstream and re-verify them.

Each cached file is downloaded again from the URL it was fetched from (its artifact's ``origin``) and hashed:

* ``verified``: the upstream still serves the stored bytes;
* ``restored``: it does, and the local blob was missing or damaged: it is written again;
* ``mismatch``: the upstream now serves other bytes. This is reported and the stored file is kept (a file that
  changed upstream is exactly what a cache must not follow silently);
* ``missing-upstream``: the upstream answers 404/410 for it (reported; the stored file is kept).

A transient failure (transport error, time-out, 5xx) fails the attempt; the job is retried with exponential
backoff (``backoff * 2**(attempt-1)`` seconds) until ``max_attempts`` by the durable task runner (``core.tasks``,
task kind ``promotion.resync``, whose function is ``attempt``). The job row keeps the outcome and report.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ..db.models import Artifact, AuditEvent
from ..db.models_promotion import ResyncJob
from ..db.models import utcnow
from . import audit
from .errors import InvalidInput, NotFound

if TYPE_CHECKING:  # pragma: no cover
    import httpx

    from .content import LiveFile
    from .services import Core

__all__ = ["ResyncService", "ResyncRetry", "TASK_KIND"]

log = logging.getLogger("wharf.resync")

TASK_KIND = "promotion.resync"
FINAL = ("ok", "mismatch", "failed")


class ResyncRetry(Exception):
    """An attempt failed for a reason that may pass (the upstream is down): try again later."""

    def __init__(self, message: str, *, delay: float, final: bool):
        super().__init__(message)
        self.delay = delay
        self.final = final


class _Transient(Exception):
    pass


def resync_task(core: "Core", payload: dict[str, Any]) -> None:
    """The task function (``core.tasks``): one attempt; raising makes the task runner retry it later."""
    core.promotions.resync.attempt(int(payload["job"]))  # type: ignore[attr-defined]


class ResyncService:
    def __init__(self, core: "Core"):
        self.core = core
        core.tasks.register(TASK_KIND, resync_task)

    # -- starting and reading jobs -----------------------------------------------------------------------------
    def start(self, repository: str, package: str, version: str | None = None, *, actor: str,
              remote_addr: str | None = None, max_attempts: int = 5, backoff: float = 2.0,
              background: bool = True) -> dict[str, Any]:
        repo = self.core.repos.require(repository)
        if repo.kind != "proxy":
            raise InvalidInput(f"'{repo.name}' is a {repo.kind} repository: resync re-fetches from a proxy's upstream")
        if not 1 <= max_attempts <= 50:
            raise InvalidInput("max_attempts must be between 1 and 50")
        if not 0 <= backoff <= 3600:
            raise InvalidInput("backoff must be between 0 and 3600 seconds")
        name = self.core.plugin(repo).normalize_name(package)
        if not any(version is None or f.version == version for f in self.core.content.files(repo.id, name, meta_keys=())):
            raise NotFound(f"repository '{repo.name}' has no cached files of {package}{' ' + version if version else ''}")
        with self.core.sessions.begin() as s:
            job = ResyncJob(repository=repo.name, name=name, version=version, status="pending", attempts=0,
                            max_attempts=max_attempts, backoff=backoff, actor=actor, report={})
            s.add(job)
            s.flush()
            job_id = job.id
            audit.record(s, "repository:package:resync", actor=actor, repository=repo.name,  # type: ignore[arg-type]
                         subject=name, remote_addr=remote_addr, version=version, job=job_id)
        if background:
            self._schedule(job_id, max_attempts, backoff)
        return self.get(job_id)

    def _schedule(self, job_id: int, max_attempts: int, backoff: float) -> None:
        self.core.tasks.enqueue(TASK_KIND, {"job": job_id}, max_attempts=max_attempts, backoff=backoff)

    def get(self, job_id: int) -> dict[str, Any]:
        with self.core.sessions() as s:
            job = s.get(ResyncJob, job_id)
            if job is None:
                raise NotFound(f"no resync job {job_id}")
            return _job_dict(job)

    def list(self, repository: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        q = select(ResyncJob).order_by(ResyncJob.id.desc()).limit(min(max(limit, 1), 500))
        if repository:
            q = q.where(ResyncJob.repository == repository)
        with self.core.sessions() as s:
            return [_job_dict(j) for j in s.scalars(q)]

    # -- one attempt ---------------------------------------------------------------------------------------------
    def attempt(self, job_id: int) -> dict[str, Any]:
        """Re-fetch and verify every cached file of the job's package once. Raises ResyncRetry on a transient
        failure (``final`` once the attempts are used up)."""
        job = self.get(job_id)
        if job["status"] in FINAL:
            return job
        repo = self.core.repos.get(job["repository"])
        if repo is None or repo.kind != "proxy":
            return self._finish(job_id, "failed", error=f"repository '{job['repository']}' is gone or not a proxy")
        files = [f for f in self.core.content.files(repo.id, job["name"], meta_keys=())
                 if job["version"] is None or f.version == job["version"]]
        if not files:
            return self._finish(job_id, "failed", error="no cached files of the package are left")
        origins = self._origins(repo.name, files)
        report: list[dict[str, Any]] = []
        try:
            with _client(repo.config["upstream"]) as client:
                for f in files:
                    report.append(self._verify(client, f, origins.get(f.key, "")))
        except _Transient as exc:
            return self._failed_attempt(job_id, str(exc))
        status = "mismatch" if any(r["status"] == "mismatch" for r in report) else "ok"
        return self._finish(job_id, status, report={"files": report}, attempt=True)

    def _origins(self, repo_name: str, files: list["LiveFile"]) -> dict[str, str]:
        """key -> the URL this repository fetched the file from. The artifact row is shared by every repository
        holding the same file (its ``origin`` is the first fetch's, maybe another proxy's): the repository's own
        record is its proxy-fetch audit entry; the artifact's origin is the fallback."""
        keys = [f.key for f in files]
        out: dict[str, str] = {}
        with self.core.sessions() as s:
            q = (select(AuditEvent.subject, AuditEvent.detail)
                 .where(AuditEvent.action == str(audit.AuditTag.FILE_CACHE), AuditEvent.repository == repo_name,
                        AuditEvent.subject.in_(keys))
                 .order_by(AuditEvent.id))
            for subject, detail in s.execute(q):
                if isinstance(detail, dict) and isinstance(detail.get("origin"), str):
                    out[subject] = detail["origin"]
            missing = [f for f in files if f.key not in out]
            if missing:
                rows = dict(s.execute(select(Artifact.id, Artifact.origin)
                                      .where(Artifact.id.in_([f.artifact_id for f in missing]))).all())
                for f in missing:
                    out[f.key] = rows.get(f.artifact_id) or ""
        return out

    def _verify(self, client: "httpx.Client", f: "LiveFile", origin: str) -> dict[str, Any]:
        import httpx

        out: dict[str, Any] = {"filename": f.filename, "key": f.key, "version": f.version, "sha256": f.sha256}
        if not origin.startswith(("http://", "https://")):
            return {**out, "status": "no-origin"}
        blobs = self.core.blobs
        try:
            with client.stream("GET", origin, headers={"Accept-Encoding": "identity"}) as resp:
                if resp.status_code in (404, 410):
                    return {**out, "status": "missing-upstream", "upstream_status": resp.status_code}
                if resp.status_code != 200:
                    raise _Transient(f"the upstream answered {resp.status_code} for {f.filename}")
                writer = blobs.writer()
                try:
                    for chunk in resp.iter_raw():
                        writer.write(chunk)
                    got = writer.digests()["sha256"]
                    if got != f.sha256:
                        log.warning("resync: upstream file differs", extra={"fields": {
                            "file": f.filename, "stored": f.sha256, "upstream": got}})
                        return {**out, "status": "mismatch", "upstream_sha256": got}
                    if blobs.verify(f.sha256):
                        return {**out, "status": "verified"}
                    blobs.delete(f.sha256)  # missing or damaged locally: the verified bytes replace it
                    writer.commit(expect_sha256=f.sha256)
                    return {**out, "status": "restored"}
                finally:
                    writer.abort()
        except httpx.HTTPError as exc:
            raise _Transient(f"fetching {f.filename} failed: {type(exc).__name__}: {exc}")

    def _failed_attempt(self, job_id: int, error: str) -> dict[str, Any]:
        with self.core.sessions.begin() as s:
            job = s.get(ResyncJob, job_id)
            assert job is not None
            job.attempts += 1
            final = job.attempts >= job.max_attempts
            delay = job.backoff * 2 ** (job.attempts - 1)
            job.status = "failed" if final else "retrying"
            job.error = error if not final else f"{error} (gave up after {job.attempts} attempt(s))"
            job.next_at = None if final else utcnow() + timedelta(seconds=delay)
            job.updated_at = utcnow()
        raise ResyncRetry(error, delay=delay, final=final)

    def _finish(self, job_id: int, status: str, *, error: str | None = None, report: dict[str, Any] | None = None,
                attempt: bool = False) -> dict[str, Any]:
        with self.core.sessions.begin() as s:
            job = s.get(ResyncJob, job_id)
            assert job is not None
            job.status = status
            job.error = error
            job.next_at = None
            if attempt:
                job.attempts += 1
            if report is not None:
                job.report = report
            job.updated_at = utcnow()
        return self.get(job_id)


def _client(cfg: dict[str, Any]) -> "httpx.Client":
    """A blocking client with the proxy's upstream settings (auth, CA bundle, time-outs); the proxy's pooled
    client belongs to the serving event loop."""
    import ssl

    import httpx

    from .upstream import UpstreamConfig

    c = UpstreamConfig(**cfg)
    ctx = ssl.create_default_context()
    if c.ca_bundle:
        ctx.load_verify_locations(cafile=c.ca_bundle)
    auth: Any = None
    headers = {"User-Agent": "wharf-resync"}
    if c.auth and c.auth.get("type") == "basic":
        auth = httpx.BasicAuth(c.auth["username"], c.auth["password"])
    elif c.auth and c.auth.get("type") == "bearer":
        headers["Authorization"] = f"Bearer {c.auth['token']}"
    return httpx.Client(verify=ctx, auth=auth, headers=headers, trust_env=True, follow_redirects=True,
                        timeout=httpx.Timeout(c.read_timeout, connect=c.connect_timeout))


def _job_dict(job: ResyncJob) -> dict[str, Any]:
    return {"id": job.id, "repository": job.repository, "name": job.name, "version": job.version,
            "status": job.status, "attempts": job.attempts, "max_attempts": job.max_attempts, "backoff": job.backoff,
            "next_at": job.next_at, "actor": job.actor, "error": job.error, "report": job.report,
            "created_at": job.created_at, "updated_at": job.updated_at}
