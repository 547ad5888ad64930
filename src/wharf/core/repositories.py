"""Repositories: creation, settings, lookup (cached per process, invalidated by the change signal)."""

from __future__ import annotations

import re
from typing import Any, Mapping

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ..db.models import Repository, RepositoryVersion
from . import audit
from .access import ACCESS_SETTINGS, compile_rules, validate_access
from .errors import Conflict, InvalidInput, NotFound
from .interfaces import KINDS, FormatPlugin, RepoInfo
from .signal import ChangeSignal
from .upstream import parse_upstream_config, redact

__all__ = ["RepositoryService", "validate_repository_name", "RESERVED_NAMES"]

RESERVED_NAMES = frozenset({"api", "ui", "v2", "static", "-", "health", "metrics", "favicon.ico", "robots.txt"})
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
_COMMON_SETTINGS = {"allow_overwrite": bool, "max_upload_size": int, "description": str, "retention": dict,
                    "promote_to": str}  # promote_to: the next stage of `wharf promote` (core/promotion.py)
_GROUP_SETTINGS = ("members", "default_member", "guard", "reserved")


def validate_repository_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name) or name in (".", ".."):
        raise InvalidInput(
            f"invalid repository name {name!r}: use 1-100 lowercase letters, digits, '-', '_' or '.', starting with a letter or digit",
            reason="invalid-name")
    if name in RESERVED_NAMES:
        raise InvalidInput(f"repository name {name!r} is reserved (it is a top-level path of the server)", reason="reserved-name")
    return name


def _info(r: Repository) -> RepoInfo:
    config = dict(r.config or {})
    return RepoInfo(r.id, r.name, r.format, r.kind, r.private, config, r.version, access=compile_rules(config))


class RepositoryService:
    def __init__(self, sessions: sessionmaker[Session], plugins: Mapping[str, FormatPlugin], signal: ChangeSignal):
        self._sessions = sessions
        self._plugins = plugins
        self._signal = signal
        self._cache: dict[str, RepoInfo] | None = None
        self._flat: dict[str, list[RepoInfo]] = {}

    # -- lookups (hot path) ---------------------------------------------------------------------------------
    def invalidate(self) -> None:
        self._cache = None
        self._flat = {}

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
    def _check_settings(self, fmt: str, kind: str, config: Mapping[str, Any], private: bool = False) -> dict[str, Any]:
        plugin = self._plugins.get(fmt)
        if plugin is None:
            raise InvalidInput(f"unknown format {fmt!r}; available: {', '.join(sorted(self._plugins))}", reason="invalid-format")
        if kind not in KINDS:
            raise InvalidInput(f"unknown kind {kind!r}; one of {', '.join(KINDS)}", reason="invalid-kind")
        if kind not in plugin.kinds:
            raise InvalidInput(f"format {fmt!r} does not support {kind!r} repositories yet", reason="invalid-kind")
        common: dict[str, Any] = {}
        rest: dict[str, Any] = {}
        config = dict(config or {})
        if kind == "proxy":
            upstream = dict(config.pop("upstream", None) or {})
            url = upstream.get("url")
            if isinstance(url, str) and "://" not in url:  # a preset name, e.g. "pypi"
                preset = getattr(plugin, "upstream_preset", lambda _n: None)(url)
                if preset is None:
                    raise InvalidInput(f"unknown upstream preset {url!r} for format {fmt!r}")
                upstream["url"] = preset
            common["upstream"] = parse_upstream_config(upstream)
        elif "upstream" in config:
            raise InvalidInput("only proxy repositories have an upstream")
        if kind == "group":
            common.update(self._check_group(fmt, config, private=private))
            for key in _GROUP_SETTINGS:
                config.pop(key, None)
        elif any(k in config for k in _GROUP_SETTINGS):
            raise InvalidInput("only group repositories have members")
        common.update(validate_access(config))
        for key, value in config.items():
            if key == "retention" and value is None:  # {"retention": null} removes the policy
                continue
            if key in ACCESS_SETTINGS:
                continue
            if key in _COMMON_SETTINGS:
                typ = _COMMON_SETTINGS[key]
                if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
                    raise InvalidInput(f"setting {key!r} must be a {typ.__name__}")
                if key == "max_upload_size" and value <= 0:
                    raise InvalidInput("setting 'max_upload_size' must be positive")
                if key == "retention":
                    from .snapshots import validate_retention

                    value = validate_retention(value)
                common[key] = value
            else:
                rest[key] = value
        return {**common, **plugin.validate_config(kind, rest)}

    def _check_group(self, fmt: str, config: Mapping[str, Any], name: str | None = None, *,
                     private: bool = False) -> dict[str, Any]:
        members = config.get("members")
        if not isinstance(members, list) or not members or not all(isinstance(m, str) for m in members):
            raise InvalidInput("a group repository needs 'members': an ordered list of repository names")
        if len(set(members)) != len(members):
            raise InvalidInput("group members must be distinct")
        for m in members:
            info = self.get(m)
            if info is None:
                raise InvalidInput(f"group member {m!r} does not exist")
            if info.format != fmt:
                raise InvalidInput(f"group member {m!r} is a {info.format} repository, not {fmt}")
            if info.private and not private:
                raise InvalidInput(f"group member {m!r} is private: a public group would serve it to anyone; "
                                   "make the group private too")
            if name is not None and (m == name or name in [r.name for r in self.flatten(info)]):
                raise InvalidInput(f"group member {m!r} would make a cycle")
        default = config.get("default_member")
        if default is not None:
            info = self.get(default) if isinstance(default, str) else None
            if info is None or info.kind != "hosted" or default not in members:
                raise InvalidInput("'default_member' must be a hosted repository among the members (uploads go there)")
        guard = config.get("guard", True)
        if not isinstance(guard, bool):
            raise InvalidInput("'guard' (dependency-confusion protection) must be true or false")
        reserved = config.get("reserved", [])
        if not isinstance(reserved, list) or not all(isinstance(p, str) and p for p in reserved):
            raise InvalidInput("'reserved' must be a list of name patterns such as 'acme-*'")
        out: dict[str, Any] = {"members": members, "guard": guard, "reserved": reserved}
        if default is not None:
            out["default_member"] = default
        return out

    def flatten(self, repo: RepoInfo, _seen: set[str] | None = None) -> list[RepoInfo]:
        """A group's effective members in order: nested groups expanded, each repository once (memoised until the
        next configuration change)."""
        if _seen is None:
            hit = self._flat.get(repo.name)
            if hit is None:
                self.get(repo.name)  # (re)load the cache first, so an invalidation cannot race the memo
                hit = self._flat[repo.name] = self.flatten(repo, {repo.name})
            return hit
        seen = _seen
        out: list[RepoInfo] = []
        for m in repo.config.get("members", []):
            info = self.get(m)
            if info is None or info.name in seen:
                continue
            seen.add(info.name)
            if info.kind == "group":
                out.extend(self.flatten(info, seen))
            else:
                out.append(info)
        return out

    def create(self, *, name: str, format: str, kind: str = "hosted", private: bool = False,
               config: Mapping[str, Any] | None = None, actor: str, remote_addr: str | None = None) -> RepoInfo:
        validate_repository_name(name)
        settings = self._check_settings(format, kind, config or {}, private=bool(private))
        try:
            with self._sessions.begin() as s:
                repo = Repository(name=name, format=format, kind=kind, private=bool(private), config=settings, version=0)
                s.add(repo)
                s.flush()
                s.add(RepositoryVersion(repository_id=repo.id, number=0, actor=actor, summary="created"))
                audit.record(s, audit.AuditTag.REPOSITORY_CREATE, actor=actor, repository=name, remote_addr=remote_addr,
                             format=format, kind=kind, private=bool(private), config=redact(settings))
                info = _info(repo)
        except IntegrityError:
            raise Conflict(f"a repository named {name!r} already exists", reason="exists")
        self._changed()
        return info

    def update(self, name: str, *, private: bool | None = None, config: Mapping[str, Any] | None = None, actor: str,
               remote_addr: str | None = None) -> RepoInfo:
        current = self.require(name)
        settings = None
        will_be_private = current.private if private is None else bool(private)
        if config is not None or (current.kind == "group" and not will_be_private):
            # validated before the write transaction (validation reads other repositories)
            merged = {**current.config, **(config or {})}
            if current.kind == "group":
                self._check_group(current.format, merged, name, private=will_be_private)
            settings = self._check_settings(current.format, current.kind, merged, private=will_be_private)
        if will_be_private and not current.private:
            public_groups = [g.name for g in self.list() if g.kind == "group" and not g.private
                             and name in g.config.get("members", [])]
            if public_groups:
                raise Conflict(f"repository {name!r} is a member of public group(s) {', '.join(public_groups)}, which "
                               "would keep serving it to anyone; make those groups private first")
        with self._sessions.begin() as s:
            repo = s.scalar(select(Repository).where(Repository.name == name))
            if repo is None:
                raise NotFound(f"no repository named {name!r}")
            if settings is not None:
                repo.config = settings
            if private is not None:
                repo.private = bool(private)
            audit.record(s, audit.AuditTag.REPOSITORY_UPDATE, actor=actor, repository=name, remote_addr=remote_addr,
                         private=repo.private, config=redact(repo.config))
            info = _info(repo)
        self._changed()
        return info

    def delete(self, name: str, *, actor: str, remote_addr: str | None = None) -> None:
        with self._sessions.begin() as s:
            repo = s.scalar(select(Repository).where(Repository.name == name))
            if repo is None:
                raise NotFound(f"no repository named {name!r}")
            groups = [g.name for g in s.scalars(select(Repository).where(Repository.kind == "group"))
                      if name in (g.config or {}).get("members", [])]
            if groups:
                raise Conflict(f"repository {name!r} is a member of group(s) {', '.join(groups)}; remove it there first")
            s.delete(repo)
            audit.record(s, audit.AuditTag.REPOSITORY_DELETE, actor=actor, repository=name, remote_addr=remote_addr)
        self._changed()

    def _changed(self) -> None:
        self.invalidate()
        self._signal.bump()
