"""Proxy machinery shared by every format: upstream documents cached with a TTL, files cached forever.

``cached_document``: an index page / metadata document of a proxy repository, fetched when missing or older than the
repository's index TTL, re-validated with conditional requests, 404/410 negative-cached, single-flight across
processes, and served stale when the upstream fails (stale-if-error).

``fetch_file``: a single-flight download that streams the upstream's bytes to the client while writing a blob,
verifies the expected digests before committing, and holds the last chunk back so that a mismatch never reaches the
client as a complete file. The format then records the stored blob (``record``, run in a thread) and publishes it.
Given the ``candidate`` (what the upstream's index says the file is), ``core.admit`` is asked first: a quarantined
version, a policy's deny or a customer's package-scoped entitlement refuses the fetch before a byte is fetched, and
rules that need the bytes make the fetch hold them until the gates have passed the stored file.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterator, Mapping

import anyio.to_thread

from ..asgi import HTTPError, Scope, Send
from ..storage import BlobRef
from .ingest import Candidate
from .pages import Page
from .upstream import UpstreamError

if TYPE_CHECKING:  # pragma: no cover
    import httpx

    from .interfaces import RepoInfo
    from .services import Core

__all__ = ["cached_document", "fetch_file", "admit", "UnreadableUpstream", "Parse", "Record", "PendingRecords"]

log = logging.getLogger("wharf.proxy")

# parse(response) -> (variants, meta): the page to store for a 200 answer
Parse = Callable[["httpx.Response"], tuple[dict[str, bytes], dict[str, Any]]]
# record(blob, local path of the stored blob or None) after the blob is committed (runs in a worker thread)
Record = Callable[[BlobRef, "Path | None"], Any]


class PendingRecords:
    """Proxied files whose last bytes a client has (or is being sent) and that this process has not recorded yet,
    counted per repository. A file is recorded just after the client has it (off the download's path); a snapshot
    of a proxy's current state waits for these (``wait_idle``), so that one taken right after an install through the
    proxy holds what was installed. (Records in another server process are not seen: with several workers, a
    snapshot can still miss a file fetched in the same instant.)"""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._counts: dict[str, int] = {}

    @contextlib.contextmanager
    def hold(self, repo: str) -> Iterator[None]:
        with self._cond:
            self._counts[repo] = self._counts.get(repo, 0) + 1
        try:
            yield
        finally:
            with self._cond:
                left = self._counts[repo] - 1
                if left:
                    self._counts[repo] = left
                else:
                    del self._counts[repo]
                self._cond.notify_all()

    def wait_idle(self, repo: str, timeout: float) -> bool:
        """Wait until no record of ``repo`` is pending in this process (False: still some after ``timeout``)."""
        with self._cond:
            return self._cond.wait_for(lambda: repo not in self._counts, timeout)


class UnreadableUpstream(ValueError):
    """Raised by a ``parse`` function: the upstream answered 200 with something that is not a valid document."""


def _usable(page: Page | None) -> Page | None:
    return None if page is None or page.meta.get("missing") else page


async def cached_document(core: "Core", repo: "RepoInfo", key: str, url: str | Callable[[], str], *, parse: Parse,
                          headers: Mapping[str, str] | None = None, allow_stale: bool = False) -> Page | None:
    """The proxy's page ``key`` (None when the upstream does not have it). Raises UpstreamError only when the
    upstream fails and nothing is cached. ``url`` may be a function, called only when the upstream is asked."""
    page = core.pages.read(repo.name, key)
    if page is not None and (page.meta.get("exp", 0) > time.time() or allow_stale):
        return _usable(page)
    if callable(url):
        url = url()
    async with core.flights.flight(f"page:{repo.name}:{key}"):
        page = core.pages.read(repo.name, key)
        if page is not None and page.meta.get("exp", 0) > time.time():
            return _usable(page)
        try:
            page = await _revalidate(core, repo, key, url, page, parse, headers or {})
        except UpstreamError as exc:
            if _usable(page) is not None:
                log.warning("serving stale page", extra={"fields": {"repository": repo.name, "key": key,
                                                                     "error": exc.message}})
                return page  # stale-if-error
            raise
    return _usable(page)


async def _revalidate(core: "Core", repo: "RepoInfo", key: str, url: str, old: Page | None, parse: Parse,
                      headers: Mapping[str, str]) -> Page | None:
    up = core.upstream(repo)
    req = dict(headers)
    if _usable(old) is not None:
        assert old is not None
        if old.meta.get("etag"):
            req["If-None-Match"] = old.meta["etag"]
        if old.meta.get("lm"):
            req["If-Modified-Since"] = old.meta["lm"]
    resp = await up.get(url, headers=req)
    cfg = up.config
    if resp.status_code == 304 and _usable(old) is not None:
        assert old is not None
        meta = {**old.meta, "exp": time.time() + cfg.index_ttl}
        core.pages.write(repo.name, key, time.time_ns(), {k: body for k, (_etag, body) in old.variants.items()}, meta)
        return core.pages.read(repo.name, key)
    if resp.status_code in (404, 410):
        core.pages.write(repo.name, key, time.time_ns(), {}, {"missing": True, "exp": time.time() + cfg.negative_ttl})
        return None
    if resp.status_code != 200:
        up.failed()
        raise UpstreamError(f"upstream {up.base} answered {resp.status_code} for {url}")
    try:
        variants, meta = parse(resp)
    except UnreadableUpstream as exc:
        up.failed()
        raise UpstreamError(f"upstream {up.base} returned an unreadable document for {url}: {exc}")
    meta = {**meta, "exp": time.time() + cfg.index_ttl, "etag": resp.headers.get("etag"),
            "lm": resp.headers.get("last-modified")}
    core.pages.write(repo.name, key, time.time_ns(), variants, meta)
    return core.pages.read(repo.name, key)


async def admit(core: "Core", repo: "RepoInfo", scope: Scope, candidate: Candidate) -> bool:
    """May this request make the proxy fetch ``candidate``? Raises 403 (nothing is fetched) for a customer's
    entitlement that does not cover the package, or when an admission refuses it (quarantine, policy). Returns
    whether the bytes must be held until the gates have decided on them."""
    entitlement = scope.get("wharf.entitlement")
    if entitlement is not None:
        core.entitlements.check_package(entitlement, candidate.name, candidate.filename)
        scope["wharf.package"] = candidate.name  # what the file is, before the store can say it
    actor = f"proxy:{core.upstream(repo).host}"
    return await anyio.to_thread.run_sync(functools.partial(core.admit, repo, candidate, actor=actor))


async def fetch_file(core: "Core", repo: "RepoInfo", url: str, *, filename: str, expect: Mapping[str, str],
                     scope: Scope, send: Send, record: Record, serve_cached: Callable[[], Awaitable[bool]],
                     candidate: Candidate, content_type: bytes = b"application/octet-stream",
                     flight_key: str | None = None, headers: list[tuple[bytes, bytes]] | None = None,
                     announced: Mapping[str, str] | None = None) -> None:
    """Serve a proxied file: from the cache if another request stored it meanwhile (``serve_cached``), from an
    already stored blob when the expected sha256 is known, else streamed from ``url`` while it is stored.
    ``expect`` maps digest names (sha256, sha512, sha1, md5) to the hex values the upstream promised.
    ``announced`` maps upstream response headers to digest names (e.g. ``{"x-checksum-sha256": "sha256"}``): a
    digest the upstream announces in those headers is verified too (for upstreams without an index)."""
    expect = {k: v.lower() for k, v in expect.items() if v}
    hold = await admit(core, repo, scope, candidate)
    async with core.flights.flight(flight_key or f"file:{repo.name}:{url}"):
        if await serve_cached():
            return
        sha = expect.get("sha256")
        if sha and core.blobs.exists(sha):  # uploaded elsewhere, or cached by another proxy: no download
            path = core.blobs.local_path(sha)
            size = path.stat().st_size if path is not None else 0
            await anyio.to_thread.run_sync(record, BlobRef(sha, size, {"sha256": sha}), path)
            if await serve_cached():
                return
        await _stream_and_store(core, repo, url, filename, expect, scope, send, record, content_type, headers or [],
                                announced or {}, hold=hold, serve_cached=serve_cached)
        if scope.get("wharf.entitlement") is not None and scope["method"] == "GET":
            core.entitlements.count(scope["wharf.entitlement"].token_id)


async def _stream_and_store(core: "Core", repo: "RepoInfo", url: str, filename: str, expect: Mapping[str, str],
                            scope: Scope, send: Send, record: Record, content_type: bytes,
                            extra: list[tuple[bytes, bytes]], announced: Mapping[str, str], *, hold: bool,
                            serve_cached: Callable[[], Awaitable[bool]]) -> None:
    """Stream the upstream's bytes to the client while they are stored; with ``hold``, store them first and serve
    the stored file only once ``record`` (the gates) accepted it."""
    import httpx

    up = core.upstream(repo)
    writer: Any = None  # made once the answer says which digests to check (each one costs a pass over the bytes)
    started = False
    head = scope["method"] == "HEAD"
    headers: list[tuple[bytes, bytes]] = []
    pending = b""
    try:
        try:
            async with up.stream(url, headers={"Accept-Encoding": "identity"}) as resp:
                if resp.status_code in (404, 410):
                    raise HTTPError(404, f"upstream {up.base} does not have {filename}")
                if resp.status_code != 200:
                    up.failed()
                    raise UpstreamError(f"upstream {up.base} answered {resp.status_code} for {filename}")
                said = {alg: resp.headers[h].strip().lower() for h, alg in announced.items() if resp.headers.get(h)}
                if any(expect.get(alg, digest) != digest for alg, digest in said.items()):
                    up.failed()
                    raise UpstreamError(f"upstream {up.base} announced digests for {filename} that contradict "
                                        "what it promised before; nothing was cached")
                expect = {**said, **expect}
                writer = core.blobs.writer(algorithms=[a for a in expect if a != "sha256"])
                headers = [(b"content-type", content_type), (b"accept-ranges", b"bytes"), *extra]
                if expect.get("sha256"):
                    headers.append((b"etag", b'"%s"' % expect["sha256"].encode()))
                if resp.headers.get("content-length", "").isdigit():
                    headers.append((b"content-length", resp.headers["content-length"].encode()))
                async for chunk in resp.aiter_raw():
                    writer.write(chunk)
                    if head or hold or not chunk:
                        continue  # HEAD: headers only once the file is verified
                    if pending:
                        if not started:
                            await send({"type": "http.response.start", "status": 200, "headers": headers})
                            started = True
                        await send({"type": "http.response.body", "body": pending, "more_body": True})
                    pending = chunk
        except httpx.HTTPError as exc:
            raise up.error(exc, url)
        got = writer.digests()
        for alg, want in expect.items():
            if got.get(alg) != want:
                up.failed()
                raise UpstreamError(f"upstream {up.base} sent {filename} with {alg} {got.get(alg)}, "
                                    f"but it announced {want}; nothing was cached")
        up.succeeded()
    except BaseException as exc:
        if writer is not None:
            writer.abort()
        if started and isinstance(exc, (UpstreamError, HTTPError)):
            # too late for an error status: end without the held-back bytes, so the client's download fails
            log.warning("proxied download cut", extra={"fields": {"repository": repo.name, "file": filename,
                                                                  "error": str(exc)}})
            return
        raise
    if hold:  # nothing was sent: the gates decide on the stored file, then it is served from the store
        await anyio.to_thread.run_sync(_commit_and_record, core, writer, record)
        if not await serve_cached():  # (a quarantine raises 403 with its reason in there)
            raise HTTPError(404, f"{filename} was fetched from {up.base} but is not served here")
        return
    with core.pending_records.hold(repo.name):  # from before the client has the last bytes until recorded
        try:
            if not started:
                await send({"type": "http.response.start", "status": 200, "headers": headers})
            # the bytes are verified: the client gets them first, then they are stored (one thread hop)
            await send({"type": "http.response.body", "body": b"" if head else pending})
        finally:
            try:
                await anyio.to_thread.run_sync(_commit_and_record, core, writer, record)
            except Exception:
                writer.abort()
                log.exception("could not cache a proxied file",
                              extra={"fields": {"repository": repo.name, "file": filename}})


def _commit_and_record(core: "Core", writer: Any, record: Record) -> None:
    ref = writer.commit()
    try:
        record(ref, core.blobs.local_path(ref.sha256))
    except BaseException:  # refused (a gate) or failed: keep no blob that nothing records
        core.content.forget_blob_if_unreferenced(core.blobs, ref.sha256)
        raise
