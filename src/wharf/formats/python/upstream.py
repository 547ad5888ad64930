"""Reading an upstream simple index (PEP 691 JSON or PEP 503 HTML) into PEP 691 file dicts."""

from __future__ import annotations

import json
from html import unescape
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

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
        return {"sha256": value["sha256"].lower()} if _good_sha(value.get("sha256")) else True
    if value is True:
        return True
    if isinstance(value, str) and value:
        if value.startswith("sha256=") and _good_sha(value[7:]):
            return {"sha256": value[7:].lower()}
        return True
    return False


def _good_sha(sha: Any) -> bool:
    """A sha256 in hex: Wharf addresses files (and blob paths) by it, so nothing else is accepted."""
    return isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdefABCDEF" for c in sha)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _good_filename(name: str) -> bool:
    return bool(name) and name not in (".", "..") and not any(c in name for c in "/\\\x00")


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
        if not isinstance(files, list):
            raise UnreadablePage("not a PEP 691 JSON page ('files' is not a list)")
        if versions is not None and not (isinstance(versions, list) and all(isinstance(v, str) for v in versions)):
            raise UnreadablePage("not a PEP 691 JSON page ('versions' is not a list of strings)")
        for f in files:
            if not isinstance(f, dict) or not isinstance(f.get("filename"), str) or not isinstance(f.get("url"), str):
                raise UnreadablePage("a file entry lacks filename or url")
            hashes = f.get("hashes")
            sha = hashes.get("sha256") if isinstance(hashes, dict) else None
            if not _good_sha(sha) or not _good_filename(f["filename"]):
                continue
            entries.append({
                "filename": f["filename"], "upstream": urljoin(page_url, f["url"]), "sha256": sha.lower(),
                "requires-python": _str_or_none(f.get("requires-python")),
                "yanked": f["yanked"] if isinstance(f.get("yanked"), (str, bool)) and f["yanked"] else False,
                "core-metadata": _metadata(f.get("core-metadata", f.get("dist-info-metadata"))),
                "size": f["size"] if isinstance(f.get("size"), int) and not isinstance(f["size"], bool) else None,
                "upload-time": _str_or_none(f.get("upload-time")),
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
        filename = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
        if not _good_sha(sha) or not _good_filename(filename):
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
