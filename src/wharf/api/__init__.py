"""REST management API under /api/v1 (OpenAPI at /api/v1/openapi.json)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..core.errors import WharfError

if TYPE_CHECKING:  # pragma: no cover
    from ..core.services import Core
    from ..observability import Metrics

__all__ = ["build_api"]


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


def build_api(core: "Core", metrics: "Metrics") -> FastAPI:
    from . import advisories, audit, events, hooks, policy, promotion, repositories, security, snapshots, tokens
    from .deps import repository_access

    app = FastAPI(title="Wharf", version="1", openapi_url="/api/v1/openapi.json", docs_url="/api/v1/docs",
                  redoc_url=None, description="Management API of the Wharf artifact repository.",
                  dependencies=[Depends(repository_access)])
    app.state.core = core
    app.include_router(repositories.router, prefix="/api/v1")
    app.include_router(tokens.router, prefix="/api/v1")
    app.include_router(audit.router, prefix="/api/v1")
    app.include_router(events.router, prefix="/api/v1")
    app.include_router(snapshots.router, prefix="/api/v1")
    app.include_router(promotion.router, prefix="/api/v1")
    app.include_router(policy.router, prefix="/api/v1")
    app.include_router(hooks.router, prefix="/api/v1")
    app.include_router(advisories.router)  # its paths are absolute: /api/v1/advisories/... and /-/osv/v1/...
    app.include_router(security.router, prefix="/api/v1")

    @app.exception_handler(WharfError)
    async def _wharf_error(_request: Request, exc: WharfError) -> JSONResponse:
        headers = {"WWW-Authenticate": 'Basic realm="wharf"'} if exc.status == 401 else None
        return _error(exc.status, exc.message, headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
            parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
        return _error(422, "invalid request: " + "; ".join(parts))

    return app
