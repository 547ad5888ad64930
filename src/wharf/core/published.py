"""Downloads from the published tree: a stored blob becomes downloadable from a repository as
``pages/<repo>/files/<sha256>/<filename>`` (a symlink), served by path with ETag/304/Range/Content-Length."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .interfaces import RepoInfo
    from .services import Core

__all__ = ["link_file", "send_published", "refuse_withheld", "OCTET_STREAM"]

OCTET_STREAM = b"application/octet-stream"


def link_file(core: "Core", repo_name: str, sha256: str, filename: str, *, blob_sha256: str | None = None) -> bool:
    """Make the blob ``blob_sha256`` (default: ``sha256``) downloadable as ``files/<sha256>/<filename>``.
    Returns False when the blob store has no local file for it."""
    if core.pages.file_path(repo_name, sha256, filename) is not None:
        return True
    guard = getattr(core, "download_guard", None)
    if guard is not None and not guard.may_link(repo_name, sha256):
        return True  # withheld (quarantine): deliberately not published
    path = core.blobs.local_path(blob_sha256 or sha256)
    if path is None:
        return False
    core.pages.link_file(repo_name, sha256, filename, path)
    return True


async def send_published(core: "Core", repo_name: str, sha256: str, filename: str, scope: Any, send: Any, *,
                         content_type: bytes = OCTET_STREAM, etag: bytes | None = None,
                         headers: list[tuple[bytes, bytes]] | None = None) -> bool:
    """Send a file published in a repository; False if it is not published there."""
    from ..asgi import send_file

    found = core.pages.file_path(repo_name, sha256, filename)
    guard = getattr(core, "download_guard", None)  # e.g. quarantine: 403 with its reason instead of 404 / a re-fetch
    if found is None:
        if guard is not None:
            guard.on_miss(repo_name, sha256, filename)
        return False
    if guard is not None:
        guard.on_hit(repo_name, sha256)
    entitlement = scope.get("wharf.entitlement")  # set by the dispatcher for download-only customer tokens
    counted = entitlement is not None and core.entitlements.before_download(entitlement, repo_name, sha256, filename,
                                                                              package=scope.get("wharf.package"))
    path, st = found
    await send_file(scope, send, path, content_type=content_type, etag=etag or b'"%s"' % sha256.encode(), stat=st,
                    headers=headers, accel=_accel_uri(core, scope, repo_name, sha256, filename))
    if counted and scope["method"] == "GET":
        core.entitlements.count(entitlement.token_id)
    return True


def _accel_uri(core: "Core", scope: Any, repo_name: str, sha256: str, filename: str) -> bytes | None:
    """The X-Accel-Redirect URI for this download, when a fronting nginx is to send the file: Wharf is configured
    with the internal location (``accel_redirect``), the proxy says it takes such answers (``X-Sendfile-Type:
    X-Accel-Redirect``, the convention Rack and others use; a client talking to Wharf directly gets the file), and
    the request is a GET without ``If-Range`` (which nginx would judge against its own ETag, not Wharf's). Names
    nginx might read differently (escapes, a leading dot: nginx refuses "/." in such URIs) are served directly."""
    from ..asgi import header

    prefix = core.settings.accel_redirect
    if prefix is None or scope["method"] != "GET" or header(scope, b"if-range") is not None:
        return None
    kind = header(scope, b"x-sendfile-type")
    if kind is None or kind.lower() != b"x-accel-redirect":
        return None
    rel = f"{repo_name}/files/{sha256}/{filename}"
    if _ACCEL_SAFE.fullmatch(rel) is None:
        return None
    return (prefix + rel).encode()


_ACCEL_SAFE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+~-]*(/[A-Za-z0-9_][A-Za-z0-9._+~-]*)*")


def refuse_withheld(core: "Core", repo: "RepoInfo", name: str, version: str | None) -> None:
    """For a download that found nothing: 403 with the reason when the package version is withheld in ``repo`` (or,
    through a group, in a member), instead of a 404 (and instead of a proxy fetching it)."""
    guard = getattr(core, "download_guard", None)
    if guard is not None:
        guard.check_package(repo, name, version)
