"""Reading an upstream simple index (PEP 691 JSON or PEP 503 HTML) into PEP 691 file dicts."""

from __future__ import annotations

import json
from html import unescape
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

__all__ = ["parse_upstream_page", "ACCEPT", "UnreadablePage"]

ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"


class UnreadablePage(ValueError):
    pass


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.links.append({k: v for k, v in attrs})


def _metadata(value: Any) -> Any:
    """core-metadata in any of its spellings -> {"sha256": ...} | True | False."""
    if isinstance(value, dict):
        return {"sha256": value["sha256"]} if value.get("sha256") else True
    if value is True:
        return True
    if isinstance(value, str) and value:
        if value.startswith("sha256="):
            return {"sha256": value[7:]}
        return True
    return False


def parse_upstream_page(body: bytes, content_type: str, page_url: str) -> tuple[list[dict[str, Any]], list[str] | None]:
    """-> (entries, versions or None). Each entry: filename, upstream url (absolute), sha256, requires-python,
    yanked, core-metadata, size, upload-time. Files without a sha256 are left out: Wharf addresses files by digest."""
    entries: list[dict[str, Any]] = []
    versions = None
    if "json" in content_type:
        try:
            doc = json.loads(body)
            files = doc["files"]
            versions = doc.get("versions")
        except (ValueError, KeyError, TypeError) as exc:
            raise UnreadablePage(f"not a PEP 691 JSON page ({exc})")
        for f in files:
            if not isinstance(f, dict) or "filename" not in f or "url" not in f:
                raise UnreadablePage("a file entry lacks filename or url")
            sha = (f.get("hashes") or {}).get("sha256")
            if not sha:
                continue
            entries.append({
                "filename": f["filename"], "upstream": urljoin(page_url, f["url"]), "sha256": sha.lower(),
                "requires-python": f.get("requires-python"), "yanked": f.get("yanked") or False,
                "core-metadata": _metadata(f.get("core-metadata", f.get("dist-info-metadata"))),
                "size": f.get("size"), "upload-time": f.get("upload-time"),
            })
        return entries, versions
    if "html" not in content_type:
        raise UnreadablePage(f"unexpected content type {content_type!r}")
    parser = _Links()
    try:
        parser.feed(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UnreadablePage(f"not UTF-8 HTML ({exc})")
    for a in parser.links:
        href = a.get("href")
        if not href:
            continue
        url = urljoin(page_url, href)
        frag = urlsplit(url).fragment
        sha = frag[7:] if frag.startswith("sha256=") else None
        filename = urlsplit(url).path.rsplit("/", 1)[-1]
        if not sha or not filename:
            continue
        yanked = a.get("data-yanked")
        entries.append({
            "filename": filename, "upstream": url.split("#", 1)[0], "sha256": sha.lower(),
            "requires-python": unescape(a["data-requires-python"]) if a.get("data-requires-python") else None,
            "yanked": (yanked or True) if yanked is not None else False,
            "core-metadata": _metadata(a.get("data-core-metadata", a.get("data-dist-info-metadata"))),
            "size": None, "upload-time": None,
        })
    return entries, versions
