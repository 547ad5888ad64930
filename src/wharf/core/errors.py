"""Typed domain errors. Each carries the HTTP status it maps to and a sentence for people."""

from __future__ import annotations

__all__ = [
    "WharfError", "NotFound", "Conflict", "InvalidInput", "Unauthorized", "Forbidden", "FileExists",
    "FileWasDeleted", "PayloadTooLarge", "PolicyDenied", "ReadOnlyView",
]


class WharfError(Exception):
    status = 400
    reason = "error"

    def __init__(self, message: str, *, reason: str | None = None):
        super().__init__(message)
        self.message = message
        if reason:
            self.reason = reason


class NotFound(WharfError):
    status = 404
    reason = "not-found"


class Conflict(WharfError):
    status = 409
    reason = "conflict"


class InvalidInput(WharfError):
    status = 400
    reason = "invalid"


class Unauthorized(WharfError):
    status = 401
    reason = "unauthorized"


class Forbidden(WharfError):
    status = 403
    reason = "forbidden"


class FileExists(WharfError):
    """The repository already holds this key with other content (twine --skip-existing keys on the text)."""

    status = 400
    reason = "file-exists"


class FileWasDeleted(WharfError):
    status = 400
    reason = "file-deleted"


class PayloadTooLarge(WharfError):
    status = 413
    reason = "too-large"


class PolicyDenied(WharfError):
    """A policy refused the operation (upload, proxy fetch, promotion); the message says which and why."""

    status = 403
    reason = "policy-denied"


class ReadOnlyView(WharfError):
    """A write to a snapshot view (``/<repo>/~<snapshot>/``): views are read-only."""

    status = 405
    reason = "read-only-view"
    headers = [(b"allow", b"GET, HEAD")]
