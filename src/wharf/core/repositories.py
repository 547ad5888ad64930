"""Repositories: creation, settings, lookup (cached per process, invalidated by the change signal)."""

from __future__ import annotations

import re
from typing import Any, Mapping

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ..db.models import Repository, RepositoryVersion
from . import audit
from .errors import Conflict, InvalidInput, NotFound
from .interfaces import KINDS, FormatPlugin, RepoInfo
from .signal import ChangeSignal

__all__ = ["RepositoryService", "validate_repository_name", "RESERVED_NAMES"]

RESERVED_NAMES = frozenset({"api", "ui", "v2", "static", "-", "health", "metrics", "favicon.ico", "robots.txt"})
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
_COMMON_SETTINGS = {"allow_overwrite": bool, "max_upload_size": int, "description": str}


def validate_repository_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name) or name in (".", ".."):
        raise InvalidInput(
            f"invalid repository name {name!r}: use 1-100 lowercase letters, digits, '-', '_' or '.', starting with a letter or digit",
            reason="invalid-name")
    if name in RESERVED_NAMES:
        raise InvalidInput(f"repository name {name!r} is reserved (it is a top-level path of the server)", reason="reserved-name")
    return name


def _info(r: Repository) -> RepoInfo:
    return RepoInfo(r.id, r.name, r.format, r.kind, r.private, dict(r.config or {}), r.version)


class RepositoryService:
    def __init__(self, sessions: sessionmaker[Session], plugins: Mapping[str, FormatPlugin], signal: ChangeSignal):
        self._sessions = sessions
        self._plugins = plugins
        self._signal = signal
        self._cache: dict[str, RepoInfo] | None = None

    # -- lookups (hot path) ---------------------------------------------------------------------------------
    def invalidate(self) -> None:
        self._cache = None

    def get(self, name: str) -> RepoInfo | None:
        cache = self._cache
        if cache is None:
            with self._sessions() as s:
                cache = {r.name: _info(r) for r in s.scalars(select(Repository))}
            self._cache = cache
        return cache.get(name)

    def require(self, name: str) -> RepoInfo:
        info = self.get(name)
        if info is None:
            raise NotFound(f"no repository named {name!r}")
        return info

    def list(self) -> list[RepoInfo]:
        with self._sessions() as s:
            return [_info(r) for r in s.scalars(select(Repository).order_by(Repository.name))]

    # -- changes ----------------------------------------------------------------------------------------------
    def _check_settings(self, fmt: str, kind: str, config: Mapping[str, Any]) -> dict[str, Any]:
        plugin = self._plugins.get(fmt)
        if plugin is None:
            raise InvalidInput(f"unknown format {fmt!r}; available: {', '.join(sorted(self._plugins))}", reason="invalid-format")
        if kind not in KINDS:
            raise InvalidInput(f"unknown kind {kind!r}; one of {', '.join(KINDS)}", reason="invalid-kind")
        if kind not in plugin.kinds:
            raise InvalidInput(f"format {fmt!r} does not support {kind!r} repositories yet", reason="invalid-kind")
        common = {}
        rest = {}
        for key, value in (config or {}).items():
            if key in _COMMON_SETTINGS:
                typ = _COMMON_SETTINGS[key]
                if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
                    raise InvalidInput(f"setting {key!r} must be a {typ.__name__}")
                if key == "max_upload_size" and value <= 0:
                    raise InvalidInput("setting 'max_upload_size' must be positive")
                common[key] = value
            else:
                rest[key] = value
        return {**common, **plugin.validate_config(kind, rest)}

    def create(self, *, name: str, format: str, kind: str = "hosted", private: bool = False,
               config: Mapping[str, Any] | None = None, actor: str, remote_addr: str | None = None) -> RepoInfo:
        validate_repository_name(name)
        settings = self._check_settings(format, kind, config or {})
        try:
            with self._sessions.begin() as s:
                repo = Repository(name=name, format=format, kind=kind, private=bool(private), config=settings, version=0)
                s.add(repo)
                s.flush()
                s.add(RepositoryVersion(repository_id=repo.id, number=0, actor=actor, summary="created"))
                audit.record(s, audit.AuditTag.REPOSITORY_CREATE, actor=actor, repository=name, remote_addr=remote_addr,
                             format=format, kind=kind, private=bool(private), config=settings)
                info = _info(repo)
        except IntegrityError:
            raise Conflict(f"a repository named {name!r} already exists", reason="exists")
        self._changed()
        return info

    def update(self, name: str, *, private: bool | None = None, config: Mapping[str, Any] | None = None, actor: str,
               remote_addr: str | None = None) -> RepoInfo:
        with self._sessions.begin() as s:
            repo = s.scalar(select(Repository).where(Repository.name == name))
            if repo is None:
                raise NotFound(f"no repository named {name!r}")
            if config is not None:
                repo.config = self._check_settings(repo.format, repo.kind, {**repo.config, **config})
            if private is not None:
                repo.private = bool(private)
            audit.record(s, audit.AuditTag.REPOSITORY_UPDATE, actor=actor, repository=name, remote_addr=remote_addr,
                         private=repo.private, config=repo.config)
            info = _info(repo)
        self._changed()
        return info

    def delete(self, name: str, *, actor: str, remote_addr: str | None = None) -> None:
        with self._sessions.begin() as s:
            repo = s.scalar(select(Repository).where(Repository.name == name))
            if repo is None:
                raise NotFound(f"no repository named {name!r}")
            s.delete(repo)
            audit.record(s, audit.AuditTag.REPOSITORY_DELETE, actor=actor, repository=name, remote_addr=remote_addr)
        self._changed()

    def _changed(self) -> None:
        self.invalidate()
        self._signal.bump()
