"""Serving what a repository has published (hosted files, cached proxy files, metadata pages): the hot read path."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...asgi import Scope, Send, etag_matches, send_bytes
from ...core.published import send_published
from . import store
from .parse import ChecksumPath, MavenPath, MetadataPath

if TYPE_CHECKING:  # pragma: no cover
    from ...core.pages import Page
    from ...core.services import Core

__all__ = ["serve_local", "serve_variant", "XML", "TEXT"]

XML = b"text/xml"
TEXT = b"text/plain"
_METADATA_CACHE = (b"cache-control", b"max-age=60, public")
_IMMUTABLE = (b"cache-control", b"public, max-age=31536000, immutable")


async def serve_local(core: "Core", repo_name: str, what: MavenPath, scope: Scope, send: Send, *,
                      metadata_prefix: str = "m/") -> bool:
    """Serve a stored file, its checksum, or a metadata page of ``repo_name``; False if it has none."""
    target = what.target if isinstance(what, ChecksumPath) else what
    variant = what.algorithm if isinstance(what, ChecksumPath) else None
    if isinstance(target, MetadataPath):
        page = core.pages.read(repo_name, metadata_prefix + target.path)
        if page is None or not page.variants:
            return False
        await serve_variant(scope, send, page, variant or "xml", TEXT if variant else XML)
        return True
    page = store.page_of_file(core, repo_name, target.path)
    if page is None:
        return False
    if variant is not None:
        await serve_variant(scope, send, page, variant, TEXT, immutable=not target.snapshot)
        return True
    return await send_published(core, repo_name, page.meta["sha256"], target.filename, scope, send,
                                content_type=store.content_type(target.extension))


async def serve_variant(scope: Scope, send: Send, page: "Page", variant: str, ctype: bytes, *,
                        immutable: bool = False) -> None:
    """One rendering of a page (metadata XML or a checksum), with ETag/304."""
    etag, body = page.variants[variant]
    headers = [(b"etag", etag), _IMMUTABLE if immutable else _METADATA_CACHE]
    if etag_matches(scope, etag):
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    await send_bytes(send, 200, body, ctype, headers, head=scope["method"] == "HEAD")
