#!/usr/bin/env python3
"""The ceiling of Wharf's serving stack: a bare ASGI app on the same server (granian, embedded, uvloop, Wharf's own
server options) that serves the corpus's simple pages and files with no logic at all, from dicts in memory (pages
as nginx-static renders them, small files as bytes, files over 256 KiB by granian's zero-copy pathsend, as Wharf
does). run.sh measures it beside nginx and Wharf in the same run.py run (target ``granian-bare``): whatever
separates it from nginx is the server stack's, whatever separates Wharf from it is Wharf's.

Run with Wharf's virtualenv (it needs granian):
    .venv/bin/python bench/ceiling.py --corpus /tmp/peers/corpus-2000x5 --port 8099 --workdir /tmp/ceiling
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SMALL = 256 * 1024
JSON_TYPE = b"application/vnd.pypi.simple.v1+json"


def load(corpus: str, workdir: str) -> tuple[dict, dict]:
    """(pages, files): pages[path] = {variant: (etag, body)}, files[path] = (etag, bytes | filesystem path, size)."""
    sys.path.insert(0, HERE)
    import wharfbench  # noqa: PLC0415

    wharfbench.import_shared()
    import peers  # noqa: PLC0415  (the shared harness: render the same static tree nginx serves)

    static = os.path.join(workdir, "static")
    peers.render_static(corpus, static)
    pages: dict[str, dict[str, tuple[bytes, bytes]]] = {}
    simple = os.path.join(static, "simple")
    for d, _, names in os.walk(simple):
        rel = os.path.relpath(d, static).replace(os.sep, "/")
        variants = {}
        for name, variant in (("index.html", "html"), ("index.json", "json")):
            if name in names:
                with open(os.path.join(d, name), "rb") as fh:
                    body = fh.read()
                variants[variant] = (b'"%s"' % hashlib.sha256(body).hexdigest()[:32].encode(), body)
        if variants:
            pages[f"/{rel}/"] = variants
    files: dict[str, tuple[bytes, bytes | str, int]] = {}
    packages = os.path.join(corpus, "packages")
    for name in os.listdir(packages):
        path = os.path.join(packages, name)
        size = os.path.getsize(path)
        etag = b'"%x-%x"' % (int(os.stat(path).st_mtime), size)
        if size <= SMALL:
            with open(path, "rb") as fh:
                files[f"/packages/{name}"] = (etag, fh.read(), size)
        else:
            files[f"/packages/{name}"] = (etag, os.path.abspath(path), size)
    return pages, files


def make_app(pages: dict, files: dict):  # type: ignore[no-untyped-def]
    html_hdr = (b"content-type", b"text/html; charset=utf-8")
    json_hdr = (b"content-type", JSON_TYPE)
    vary = (b"vary", b"Accept")
    cache = (b"cache-control", b"max-age=60, public")
    octet = (b"content-type", b"application/octet-stream")
    not_found = [(b"content-type", b"text/plain"), (b"content-length", b"9")]

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        path = scope["path"]
        page = pages.get(path)
        if page is not None:
            accept = b""
            for k, v in scope["headers"]:
                if k == b"accept":
                    accept = v
            variant = "json" if b"application/vnd.pypi.simple.v1+json" in accept else "html"
            etag, body = page[variant]
            await send({"type": "http.response.start", "status": 200, "headers": [
                json_hdr if variant == "json" else html_hdr, (b"content-length", str(len(body)).encode()),
                (b"etag", etag), vary, cache]})
            await send({"type": "http.response.body", "body": body})
            return
        hit = files.get(path)
        if hit is not None:
            etag, data, size = hit
            await send({"type": "http.response.start", "status": 200, "headers": [
                octet, (b"content-length", str(size).encode()), (b"etag", etag), (b"accept-ranges", b"bytes")]})
            if isinstance(data, bytes):
                await send({"type": "http.response.body", "body": data})
            else:
                await send({"type": "http.response.pathsend", "path": data})
            return
        if path == "/health":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        await send({"type": "http.response.start", "status": 404, "headers": not_found})
        await send({"type": "http.response.body", "body": b"not found"})

    return app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    pages, files = load(a.corpus, a.workdir)

    # the very options and serving loop `wharf serve` uses with one worker
    from wharf.supervisor import _granian_options, serve_embedded  # noqa: PLC0415

    app = make_app(pages, files)
    print(f"granian-bare: {len(pages)} pages, {len(files)} files on 127.0.0.1:{a.port}", flush=True)
    serve_embedded(app, _granian_options({"host": "127.0.0.1", "port": a.port}))


if __name__ == "__main__":
    main()
