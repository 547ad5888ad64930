"""Streaming multipart/form-data: text fields into memory (bounded), one file field straight into a blob writer."""

from __future__ import annotations

from email.message import Message
from typing import Callable

from python_multipart.multipart import MultipartParser, parse_options_header

from .asgi import HTTPError, Receive
from .storage import BlobTooLarge

__all__ = ["StreamedForm", "read_multipart"]

_MAX_FIELDS_BYTES = 8 * 1024 * 1024
_MAX_FIELDS = 1000


class StreamedForm:
    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}
        self.filename: str | None = None
        self.file_field: str | None = None

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else default

    def flat(self) -> dict[str, str]:
        return {k: v[0] for k, v in self.fields.items() if v}


def _disposition(raw: bytes) -> tuple[str | None, str | None]:
    msg = Message()
    msg["content-disposition"] = raw.decode("utf-8", "replace")
    return msg.get_param("name", header="content-disposition"), msg.get_filename()  # type: ignore[return-value]


async def read_multipart(receive: Receive, content_type: bytes, file_field: str,
                         open_file: Callable[[str], Callable[[bytes], None]]) -> StreamedForm:
    """Parse the request body; ``open_file(filename)`` returns the writer for the file part named ``file_field``."""
    ctype, params = parse_options_header(content_type)
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise HTTPError(400, "uploads must be multipart/form-data (as twine and uv send them)", reason="bad-content-type")
    form = StreamedForm()
    state: dict[str, object] = {"headers": [], "hname": b"", "hval": b"", "name": None, "buf": None, "sink": None}
    budget = [_MAX_FIELDS_BYTES]

    def on_part_begin() -> None:
        state.update(headers=[], hname=b"", hval=b"", name=None, buf=None, sink=None)

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["hname"] = state["hname"] + data[start:end]  # type: ignore[operator]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["hval"] = state["hval"] + data[start:end]  # type: ignore[operator]

    def on_header_end() -> None:
        state["headers"].append((state["hname"].lower(), state["hval"]))  # type: ignore[union-attr, attr-defined]
        state["hname"], state["hval"] = b"", b""

    def on_headers_finished() -> None:
        disp = next((v for k, v in state["headers"] if k == b"content-disposition"), None)  # type: ignore[attr-defined]
        if disp is None:
            raise HTTPError(400, "a multipart part has no Content-Disposition header", reason="bad-multipart")
        name, filename = _disposition(disp)
        state["name"] = name
        if name == file_field and filename is not None:
            if form.filename is not None:
                raise HTTPError(400, f"only one file may be uploaded per request (field '{file_field}')", reason="bad-multipart")
            form.filename = filename
            form.file_field = name
            state["sink"] = open_file(filename)
        else:
            if len(form.fields) >= _MAX_FIELDS:
                raise HTTPError(400, "too many form fields", reason="bad-multipart")
            state["buf"] = bytearray()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        sink = state["sink"]
        if sink is not None:
            sink(data[start:end])  # type: ignore[operator]
            return
        budget[0] -= end - start
        if budget[0] < 0:
            raise HTTPError(400, "form fields are too large", reason="bad-multipart")
        state["buf"].extend(data[start:end])  # type: ignore[union-attr]

    def on_part_end() -> None:
        if state["buf"] is not None and state["name"] is not None:
            value = bytes(state["buf"]).decode("utf-8", "replace")  # type: ignore[arg-type]
            form.fields.setdefault(str(state["name"]), []).append(value)

    parser = MultipartParser(params[b"boundary"], {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    })
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HTTPError(400, "client disconnected during upload", reason="disconnect")
        body = message.get("body", b"")
        if body:
            try:
                parser.write(body)
            except (HTTPError, BlobTooLarge):
                raise
            except Exception as exc:  # python-multipart raises its own errors for malformed bodies
                raise HTTPError(400, f"malformed multipart body: {exc}", reason="bad-multipart")
        if not message.get("more_body", False):
            break
    parser.finalize()
    return form
