"""Policies: stored, versioned CEL rules that decide on upload, proxy fetch, promotion and scan results.

A policy is data: name, scope (repositories, or every one), the events it applies to, a CEL expression over the
package's facts, the action when the expression is true (``deny`` with a message, ``quarantine``, ``tag``, ``allow``),
an enabled flag and a priority. Every edit makes a new policy version; every evaluation is logged with the policy
version, a digest of its inputs and the result. CEL is evaluated by ``common-expression-language`` (pinned).

Hooks: a gate (``core.gates``) for upload / proxy_fetch / promotion (a matching deny refuses the write, 403, nothing
stored; quarantine/tag are applied after the file is recorded), an admission (``core.admissions``) that decides a
proxy fetch before the file is fetched where the bytes are not needed, and a ``scan.completed`` subscriber
(quarantine/tag after a scan; ``deny`` on a scan quarantines, since the file is already stored).
A file not scanned yet is judged on what is known without its bytes: the analyzers that need only the package's
name and version (vulnerabilities from advisories) are asked directly.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from sqlalchemy import select

from ..db.models import Artifact, RepositoryContent, utcnow
from ..db.models_policy import Policy, PolicyDecision, PolicyVersion
from . import audit
from .errors import Conflict, InvalidInput, NotFound, PolicyDenied
from .ingest import Candidate
from .ingest import Decision as IngestDecision
from .interfaces import RepoInfo
from .quarantine import QuarantineService, emit_event

if TYPE_CHECKING:  # pragma: no cover
    from .services import Core

__all__ = ["PolicyService", "PolicyDenied", "Decision", "EVENTS", "ACTIONS", "default_inputs"]

log = logging.getLogger("wharf.policy")

EVENTS = ("upload", "proxy_fetch", "promotion", "scan")
ACTIONS = ("deny", "quarantine", "tag", "allow")
SEVERITIES = ("none", "low", "medium", "high", "critical")
_BINDER_RE = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
_ACTION_ALIASES = {"proxy-fetch": "proxy_fetch", "proxy": "proxy_fetch", "fetch": "proxy_fetch", "promote": "promotion",
                   "copy": "promotion", "move": "promotion", "scan.completed": "scan"}


class PolicyTag:
    CREATE = "policy:create"
    UPDATE = "policy:update"
    DELETE = "policy:delete"


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one policy on one package version."""

    policy_id: int
    policy: str
    policy_version: int
    event: str
    matched: bool
    action: str  # the policy's action, or "none" (not matched) / "error" (the expression failed)
    message: str | None = None
    tags: tuple[str, ...] = ()
    inputs_digest: str = ""
    error: str | None = None

    def to_ingest(self) -> IngestDecision:
        """The spine's form (what ingest carries to its follow-ups and puts in ``package.created``)."""
        return IngestDecision(self.policy, self.action, self.message, self.tags, self.policy_version,
                              detail={"engine": "cel", "policy_id": self.policy_id, "event": self.event,
                                      "inputs_digest": self.inputs_digest})

    def as_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "policy_id": self.policy_id, "policy_version": self.policy_version,
                "event": self.event, "matched": self.matched, "result": self.action, "message": self.message,
                "tags": list(self.tags), "inputs_digest": self.inputs_digest, "error": self.error}


# -- inputs ----------------------------------------------------------------------------------------------------------
def default_inputs() -> dict[str, Any]:
    """Every variable a policy may read, with the value used when the fact is unknown (expressions never meet an
    absent key)."""
    return {
        "event": "",
        "name": "",
        "version": "",
        "format": "",
        "repository": "",
        "repository_kind": "",
        "tags": [],
        "license": "",
        "licenses": [],
        "vulnerabilities": {"max_severity": "none", "max_severity_rank": 0, "count": 0, "fixable": 0, "critical": 0,
                            "high": 0, "medium": 0, "low": 0, "ids": []},
        "age_days": 0.0,
        "uploader": "",
        "provenance": {"origin": "", "source_repository": "", "actor": "", "policy": ""},
        "files": [],
        "size": 0,
        "facts": {},
    }


VARIABLES = frozenset(default_inputs())
# what is unknown before a proxy has the file's bytes (vulnerabilities are known: advisories match name and version)
BYTES_INPUTS = frozenset({"license", "licenses", "size", "facts"})


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if v is None:
            continue
        if isinstance(out.get(k), dict) and isinstance(v, Mapping):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _severity(value: Any) -> str:
    s = str(value or "none").lower()
    return {"moderate": "medium", "important": "high", "unknown": "none", "": "none"}.get(s, s)


def facts_to_inputs(facts: Mapping[str, Any]) -> dict[str, Any]:
    """Scan facts (merged ``summary`` dicts of the analyzers) -> policy inputs, tolerant of their shapes."""
    out: dict[str, Any] = {"facts": _jsonable(dict(facts))}
    vuln = facts.get("vulnerabilities") if isinstance(facts.get("vulnerabilities"), Mapping) else {}
    vsrc = {**{k: facts[k] for k in ("max_severity", "count", "fixable") if k in facts}, **vuln}
    if vsrc:
        sev = _severity(vsrc.get("max_severity"))
        v: dict[str, Any] = {"max_severity": sev, "max_severity_rank": SEVERITIES.index(sev) if sev in SEVERITIES else 0}
        for k in ("count", "fixable", "critical", "high", "medium", "low"):
            if isinstance(vsrc.get(k), (int, float)) and not isinstance(vsrc.get(k), bool):
                v[k] = int(vsrc[k])
        if isinstance(vsrc.get("ids"), list):
            v["ids"] = [str(i) for i in vsrc["ids"]]
        out["vulnerabilities"] = v
    lic = facts.get("license") if "license" in facts else facts.get("licence")
    if isinstance(lic, Mapping):
        lic = lic.get("spdx") or lic.get("expression") or lic.get("id")
    if isinstance(lic, str):
        out["license"] = lic
    lics = facts.get("licenses") or facts.get("licences")
    if isinstance(lics, list):
        out["licenses"] = [str(x) for x in lics]
    elif isinstance(lic, str) and lic:
        out["licenses"] = [p for p in re.split(r"\s+(?:AND|OR|WITH)\s+|[()]", lic) if p]
    return out


def _jsonable(v: Any) -> Any:
    return json.loads(json.dumps(v, default=str))


def digest(inputs: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str, separators=(",", ":")).encode()).hexdigest()


# -- compiled policies -----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Compiled:
    id: int
    name: str
    version: int
    repositories: tuple[str, ...] | None
    events: tuple[str, ...]
    expression: str
    action: str
    message: str | None
    tags: tuple[str, ...]
    enabled: bool
    priority: int
    program: Any = field(compare=False, repr=False)
    needs_bytes: bool = False  # reads inputs only the file itself gives (licence, size, scan facts)

    def applies(self, repo: str, event: str) -> bool:
        return event in self.events and (self.repositories is None or repo in self.repositories)


def compile_expression(expression: str) -> Any:
    """Compile a CEL expression and check it against the known variables; InvalidInput (400) on any error."""
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidInput("a policy needs a CEL expression")
    import cel  # (~30 MB with its command-line dependencies: loaded when policies are used, not at start)

    try:
        program = cel.compile(expression)
    except Exception as exc:  # the library raises ValueError with the parser's message
        raise InvalidInput(f"invalid CEL expression: {exc}")
    # (the library also lists macro variables such as ``l`` in ``licenses.exists(l, ...)``: those are not inputs)
    binders = set(_BINDER_RE.findall(expression))
    unknown = sorted(set(program.variables()) - VARIABLES - binders)
    if unknown:
        raise InvalidInput(f"invalid CEL expression: unknown variable(s) {', '.join(unknown)}; known: "
                           f"{', '.join(sorted(VARIABLES))}")
    try:
        result = program.execute(default_inputs())
    except Exception as exc:
        raise InvalidInput(f"invalid CEL expression: it fails on default inputs: {exc}")
    if not isinstance(result, bool):
        raise InvalidInput(f"invalid CEL expression: it must give true or false, not {type(result).__name__}")
    return program


def _normalize_spec(spec: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "events" in spec or not partial:
        events = spec.get("events") or []
        if isinstance(events, str):
            events = [e for e in events.split(",") if e.strip()]
        events = [_ACTION_ALIASES.get(e.strip(), e.strip()) for e in events]
        bad = [e for e in events if e not in EVENTS]
        if bad or not events:
            raise InvalidInput(f"events must be some of {', '.join(EVENTS)}" + (f" (not {', '.join(bad)})" if bad else ""))
        out["events"] = list(dict.fromkeys(events))
    if "action" in spec or not partial:
        action = spec.get("action")
        if action not in ACTIONS:
            raise InvalidInput(f"action must be one of {', '.join(ACTIONS)}")
        out["action"] = action
    if "expression" in spec or not partial:
        compile_expression(spec.get("expression", ""))
        out["expression"] = spec["expression"]
    if "repositories" in spec:
        repos = spec.get("repositories")
        if isinstance(repos, str):
            repos = [r for r in repos.split(",")]
        if repos is not None and not (isinstance(repos, list) and all(isinstance(r, str) for r in repos)):
            raise InvalidInput("repositories must be a list of repository names (or omitted: every repository)")
        repos = [r.strip() for r in repos or () if r.strip()]
        out["repositories"] = None if not repos or "*" in repos else repos
    for k in ("message", "description"):
        if k in spec:
            v = spec.get(k)
            if v is not None and not isinstance(v, str):
                raise InvalidInput(f"{k} must be a string")
            out[k] = v
    if "tags" in spec:
        tags = spec.get("tags") or []
        if isinstance(tags, str):
            tags = [t for t in tags.split(",") if t.strip()]
        if not all(isinstance(t, str) and t.strip() for t in tags):
            raise InvalidInput("tags must be a list of strings")
        out["tags"] = [t.strip() for t in tags]
    if "enabled" in spec:
        out["enabled"] = bool(spec.get("enabled"))
    if "priority" in spec:
        try:
            out["priority"] = int(spec.get("priority"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InvalidInput("priority must be an integer")
    return out


def _check_action_fields(spec: Mapping[str, Any]) -> None:
    if spec.get("action") == "tag" and not spec.get("tags"):
        raise InvalidInput("a 'tag' policy needs tags")
    if spec.get("action") == "deny" and not spec.get("message"):
        raise InvalidInput("a 'deny' policy needs a message (shown to the client)")


class PolicyService:
    def __init__(self, core: "Core"):
        self.core = core
        self.quarantine = QuarantineService(core)
        core.content.hide = self.quarantine.hidden  # indexes of every format leave quarantined files out
        core.download_guard = self.quarantine  # type: ignore[attr-defined]  # 403 with the reason on the miss path
        self._cache: tuple[int, list[_Compiled]] | None = None
        self._register_hooks()

    # -- hooks into the spine (when it is there) ------------------------------------------------------------
    def _register_hooks(self) -> None:
        core = self.core
        gates = getattr(core, "gates", None)
        if isinstance(gates, list):
            gates.append(self.gate)
            core.admissions.append(self.admit)
        after = getattr(core, "after_ingest", None)
        if isinstance(after, list):
            after.append(self.after_ingest)
        events = getattr(core, "events", None)
        if events is not None and hasattr(events, "subscribe"):
            events.subscribe("policy", self.on_event, types=["scan.completed"], when=self._may_act_on_scans,
                             prepare=self.active)

    def _may_act_on_scans(self, _event: Any) -> bool:
        """Checked when a scan.completed is emitted, maybe inside the emitter's transaction: no database access here
        (on SQLite a second connection would wait for that very transaction). Unknown -> queue the work. The event
        bus brings the policies up to date first (``prepare``) when it opens the transaction itself, as the scan
        helper's do: without that, a process that never evaluates policies would queue a task per scan."""
        hit = self._cache
        if hit is None or hit[0] != self.core.signal.current():
            return True
        return any("scan" in p.events for p in hit[1])

    # -- storage ------------------------------------------------------------------------------------------------
    def create(self, spec: Mapping[str, Any], *, actor: str, remote_addr: str | None = None) -> dict[str, Any]:
        name = spec.get("name")
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise InvalidInput("a policy name is 1-100 characters: lower-case letters, digits, '.', '_' and '-'")
        data = {"repositories": None, "message": None, "description": None, "tags": [], "enabled": True,
                "priority": 100, **_normalize_spec(spec)}
        _check_action_fields(data)
        with self.core.sessions.begin() as s:
            old = s.scalar(select(Policy).where(Policy.name == name))
            if old is not None and old.deleted_at is None:
                raise Conflict(f"a policy named '{name}' exists: update it (a new version) or delete it first")
            if old is not None:  # re-created after a delete: the history goes on
                old.deleted_at = None
                old.current_version += 1
                pol = old
            else:
                pol = Policy(name=name, current_version=1, created_at=utcnow())
                s.add(pol)
                s.flush()
            s.add(PolicyVersion(policy_id=pol.id, version=pol.current_version, created_by=actor, created_at=utcnow(),
                                **data))
            audit.record(s, PolicyTag.CREATE, actor=actor, subject=name, remote_addr=remote_addr,  # type: ignore[arg-type]
                         version=pol.current_version, **{k: data[k] for k in ("action", "events", "repositories")})
        self._changed()
        return self.show(name)

    def update(self, name: str, spec: Mapping[str, Any], *, actor: str, remote_addr: str | None = None) -> dict[str, Any]:
        changes = _normalize_spec(spec, partial=True)
        with self.core.sessions.begin() as s:
            pol = self._require(s, name)
            cur = self._version_row(s, pol.id, pol.current_version)
            data = {k: getattr(cur, k) for k in ("repositories", "events", "expression", "action", "message",
                                                  "description", "tags", "enabled", "priority")}
            new = {**data, **changes}
            _check_action_fields(new)
            if new == data:
                return self._out(pol, cur)
            pol.current_version += 1
            row = PolicyVersion(policy_id=pol.id, version=pol.current_version, created_by=actor, created_at=utcnow(), **new)
            s.add(row)
            audit.record(s, PolicyTag.UPDATE, actor=actor, subject=name, remote_addr=remote_addr,  # type: ignore[arg-type]
                         version=pol.current_version, changed=sorted(k for k in new if new[k] != data[k]))
        self._changed()
        return self.show(name)

    def delete(self, name: str, *, actor: str, remote_addr: str | None = None) -> None:
        with self.core.sessions.begin() as s:
            pol = self._require(s, name)
            pol.deleted_at = utcnow()
            audit.record(s, PolicyTag.DELETE, actor=actor, subject=name, remote_addr=remote_addr,  # type: ignore[arg-type]
                         version=pol.current_version)
        self._changed()

    def list(self) -> list[dict[str, Any]]:
        with self.core.sessions() as s:
            rows = s.execute(select(Policy, PolicyVersion).join(
                PolicyVersion, (PolicyVersion.policy_id == Policy.id) & (PolicyVersion.version == Policy.current_version))
                .where(Policy.deleted_at.is_(None)).order_by(Policy.name)).all()
            return [self._out(p, v) for p, v in rows]

    def show(self, name: str, *, version: int | None = None, history: bool = False) -> dict[str, Any]:
        with self.core.sessions() as s:
            pol = self._require(s, name)
            row = self._version_row(s, pol.id, version or pol.current_version)
            out = self._out(pol, row)
            if history:
                out["history"] = [self._version_out(v) for v in s.scalars(
                    select(PolicyVersion).where(PolicyVersion.policy_id == pol.id).order_by(PolicyVersion.version))]
            return out

    @staticmethod
    def _require(s: Any, name: str) -> Policy:
        pol = s.scalar(select(Policy).where(Policy.name == name, Policy.deleted_at.is_(None)))
        if pol is None:
            raise NotFound(f"no policy named '{name}'")
        return pol  # type: ignore[no-any-return]

    @staticmethod
    def _version_row(s: Any, policy_id: int, version: int) -> PolicyVersion:
        row = s.scalar(select(PolicyVersion).where(PolicyVersion.policy_id == policy_id, PolicyVersion.version == version))
        if row is None:
            raise NotFound(f"no version {version} of this policy")
        return row  # type: ignore[no-any-return]

    @staticmethod
    def _version_out(v: PolicyVersion) -> dict[str, Any]:
        return {"version": v.version, "description": v.description, "repositories": v.repositories, "events": v.events,
                "expression": v.expression, "action": v.action, "message": v.message, "tags": v.tags or [],
                "enabled": v.enabled, "priority": v.priority, "created_by": v.created_by, "created_at": v.created_at}

    def _out(self, pol: Policy, v: PolicyVersion) -> dict[str, Any]:
        return {"id": pol.id, "name": pol.name, "current_version": pol.current_version, **self._version_out(v)}

    def _changed(self) -> None:
        self._cache = None
        self.core.signal.bump()

    def active(self) -> list[_Compiled]:
        """Enabled policies (current versions), compiled, in evaluation order; cached until a change anywhere."""
        epoch = self.core.signal.current()
        hit = self._cache
        if hit is not None and hit[0] == epoch:
            return hit[1]
        with self.core.sessions() as s:
            rows = s.execute(select(Policy, PolicyVersion).join(
                PolicyVersion, (PolicyVersion.policy_id == Policy.id) & (PolicyVersion.version == Policy.current_version))
                .where(Policy.deleted_at.is_(None), PolicyVersion.enabled.is_(True))).all()
        out = []
        for p, v in rows:
            try:
                out.append(self._compile(p.id, p.name, v))
            except InvalidInput:  # pragma: no cover - stored expressions were checked when saved
                log.error("stored policy %s v%s does not compile", p.name, v.version)
        out.sort(key=lambda c: (c.priority, c.id))
        self._cache = (epoch, out)
        return out

    @staticmethod
    def _compile(pid: int, name: str, v: Any) -> _Compiled:
        program = compile_expression(v.expression)
        return _Compiled(pid, name, v.version, tuple(v.repositories) if v.repositories else None, tuple(v.events),
                         v.expression, v.action, v.message, tuple(v.tags or ()), bool(v.enabled), int(v.priority),
                         program, needs_bytes=bool(set(program.variables()) & BYTES_INPUTS))

    # -- inputs -------------------------------------------------------------------------------------------------
    def inputs(self, repo: RepoInfo, name: str, version: str | None, *, event: str, actor: str | None = None,
               new: Any = None, files: Iterable[Any] = (), facts: Mapping[str, Any] | None = None,
               attributes: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The facts a policy sees about one package version; every key present (defaults where unknown)."""
        files = list(files)
        attrs = attributes if attributes is not None else self.core.content.attributes(repo.id, name)
        tags = attrs.get("tags") if isinstance(attrs.get("tags"), list) else []
        base: dict[str, Any] = {"event": event, "name": name, "version": version or "", "format": repo.format,
                                "repository": repo.name, "repository_kind": repo.kind, "tags": [str(t) for t in tags]}
        if new is not None:  # a file about to be stored
            origin = getattr(new, "origin", "") or ""
            base.update(uploader=actor or "", size=int(getattr(getattr(new, "blob", None), "size", 0) or 0),
                        files=[new.filename], age_days=0.0,
                        provenance={"origin": origin, "actor": actor or "",
                                    "source_repository": origin.removeprefix("promotion:") if origin.startswith("promotion:") else ""})
            lic = _meta_license(getattr(new, "meta", None))
            if lic:
                base["license"] = lic
        elif files:
            first = min((f.added_at for f in files if f.added_at is not None), default=None)
            base.update(uploader=files[0].uploaded_by or "", size=sum(f.size for f in files),
                        files=[f.filename for f in files], age_days=_age_days(first))
            lic = _meta_license(files[0].meta)
            if lic:
                base["license"] = lic
            base["provenance"] = {"origin": self._origin(repo.id, name, version), "actor": files[0].uploaded_by or ""}
        if facts is None:
            facts = self._facts(repo, name, version)
            if new is not None and event == "promotion" and not facts.get("scanned"):
                # a promotion (or the same bytes fetched again): the scans of the repositories holding these bytes
                holders = self._holders(new.blob.sha256, exclude=repo.id)
                for other in holders:
                    got = self._facts(other, name, version)
                    if got.get("scanned"):
                        facts = got
                        break
                if holders and not base["provenance"]["source_repository"] and event == "promotion":
                    base["provenance"]["source_repository"] = holders[0].name
            if new is not None and not facts.get("scanned") and version:
                facts = {**facts, **self.core.scans.prefacts(repo, name, version)}
        merged = _merge(_merge(default_inputs(), base), facts_to_inputs(facts))
        return _jsonable(merged)

    def _facts(self, repo: RepoInfo, name: str, version: str | None) -> Mapping[str, Any]:
        scans = getattr(self.core, "scans", None)
        if scans is None or version is None:
            return {}
        try:
            return scans.facts(repo, name, version) or {}
        except Exception:  # a missing scan must not break a decision
            log.exception("scan facts of %s/%s@%s", repo.name, name, version)
            return {}

    def _holders(self, sha256: str, *, exclude: int) -> list[RepoInfo]:
        """Repositories where these bytes are live (oldest first)."""
        q = (select(RepositoryContent.repository_id).join(Artifact, Artifact.id == RepositoryContent.artifact_id)
             .where(Artifact.sha256 == sha256, RepositoryContent.version_removed.is_(None),
                    RepositoryContent.repository_id != exclude)
             .group_by(RepositoryContent.repository_id).order_by(RepositoryContent.repository_id))
        with self.core.sessions() as s:
            ids = list(s.scalars(q))
        by_id = {r.id: r for r in self.core.repos.list()} if ids else {}
        return [by_id[i] for i in ids if i in by_id]

    def _origin(self, repo_id: int, name: str, version: str | None) -> str:
        q = (select(Artifact.origin).join(RepositoryContent, RepositoryContent.artifact_id == Artifact.id)
             .where(RepositoryContent.repository_id == repo_id, RepositoryContent.name == name).limit(1))
        if version is not None:
            q = q.where(Artifact.version == version)
        with self.core.sessions() as s:
            return s.scalar(q) or ""

    # -- evaluation ---------------------------------------------------------------------------------------------
    @staticmethod
    def evaluate(policy: _Compiled, inputs: Mapping[str, Any], event: str, *, ctx: Any = None,
                 inputs_digest: str | None = None) -> Decision:
        """One policy on one set of inputs. ``ctx`` (a ``cel.Context`` of the inputs) is shared by the policies of
        one decision: converting the inputs is most of an evaluation's cost."""
        import cel

        d = inputs_digest or digest(inputs)
        try:
            result = policy.program.execute(ctx if ctx is not None else cel.Context(dict(inputs)))
        except Exception as exc:
            return Decision(policy.id, policy.name, policy.version, event, False, "error", None, (), d, str(exc))
        if not isinstance(result, bool):
            return Decision(policy.id, policy.name, policy.version, event, False, "error", None, (), d,
                            f"the expression gave {type(result).__name__}, not a boolean")
        if not result:
            return Decision(policy.id, policy.name, policy.version, event, False, "none", None, (), d)
        return Decision(policy.id, policy.name, policy.version, event, True, policy.action, policy.message,
                        policy.tags, d)

    def decide(self, repo: RepoInfo, name: str, version: str | None, event: str, inputs: Mapping[str, Any],
               *, actor: str | None = None, log_it: bool = True) -> list[Decision]:
        """Evaluate every enabled policy for this repository and event in priority order; a matching ``allow``
        stops the evaluation (an exemption), and so does a matching ``deny``."""
        out: list[Decision] = []
        ctx, d_in = None, digest(inputs)
        for pol in self.active():
            if not pol.applies(repo.name, event):
                continue
            if ctx is None:
                import cel

                ctx = cel.Context(dict(inputs))
            d = self.evaluate(pol, inputs, event, ctx=ctx, inputs_digest=d_in)
            out.append(d)
            if d.matched and d.action in ("allow", "deny"):
                break
        if log_it and out:
            self._log(repo, name, version, out, inputs, actor)
        return out

    def _log(self, repo: RepoInfo, name: str, version: str | None, decisions: list[Decision],
             inputs: Mapping[str, Any], actor: str | None) -> None:
        with self.core.sessions.begin() as s:
            for d in decisions:
                s.add(PolicyDecision(at=utcnow(), policy_id=d.policy_id, policy_name=d.policy, policy_version=d.policy_version,
                                     event=d.event, repository=repo.name, name=name, version=version, matched=d.matched,
                                     result=d.action, message=d.error or d.message, inputs_digest=d.inputs_digest,
                                     inputs=dict(inputs), actor=actor))

    def decisions(self, *, repository: str | None = None, name: str | None = None, version: str | None = None,
                  policy: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        q = select(PolicyDecision).order_by(PolicyDecision.id.desc()).limit(max(1, min(limit, 1000)))
        if repository:
            q = q.where(PolicyDecision.repository == repository)
        if name:
            q = q.where(PolicyDecision.name == name)
        if version:
            q = q.where(PolicyDecision.version == version)
        if policy:
            q = q.where(PolicyDecision.policy_name == policy)
        with self.core.sessions() as s:
            return [{"id": r.id, "at": r.at, "policy": r.policy_name, "policy_id": r.policy_id,
                     "policy_version": r.policy_version, "event": r.event, "repository": r.repository, "package": r.name,
                     "version": r.version, "matched": r.matched, "result": r.result, "message": r.message,
                     "inputs_digest": r.inputs_digest, "inputs": r.inputs, "actor": r.actor} for r in s.scalars(q)]

    def visible(self, repo: RepoInfo, decisions: list[dict[str, Any]], *, admin: bool) -> list[dict[str, Any]]:
        """What a reader of ``repo`` may see of its decision log: an admin sees all of it; anyone else neither the
        inputs (they may name uploaders) nor the decisions on a quarantined version or package (readers cannot
        see that version, and a quarantine policy's message is its reason)."""
        if admin:
            return decisions
        out = []
        for d in decisions:
            if d["package"] and self.quarantine.reason(repo.id, d["package"], d["version"]) is not None:
                continue
            d.pop("inputs", None)
            out.append(d)
        return out

    # -- the gate (core.ingest) and its follow-ups ----------------------------------------------------------------
    def gate(self, core: "Core", repo: RepoInfo, new: Any, action: str, actor: str | None) -> list[IngestDecision]:
        """Before a file is stored: quarantined package versions take no new files (PEP 792), then policies.
        Raises PolicyDenied (403, nothing stored) on a matching deny."""
        event = _ACTION_ALIASES.get(action, action)
        why = self.quarantine.reason(repo.id, new.name, new.version)
        if why is not None:
            raise PolicyDenied(f"{new.name} {new.version} is quarantined in '{repo.name}': {why}")
        if event not in EVENTS or not any(p.applies(repo.name, event) for p in self.active()):
            return []
        inputs = self.inputs(repo, new.name, new.version, event=event, actor=actor, new=new)
        decisions = self.decide(repo, new.name, new.version, event, inputs, actor=actor)
        for d in decisions:
            if d.matched and d.action == "deny":
                self._denied(core, repo, new.name, new.version, [{"filename": new.filename, "key": new.repo_key,
                                                                  "sha256": new.blob.sha256, "size": new.blob.size}],
                             actor, event, d)
        return [d.to_ingest() for d in decisions if d.matched]

    def admit(self, core: "Core", repo: RepoInfo, cand: Candidate, action: str, actor: str | None) -> bool:
        """Before a proxy fetches a file: a quarantined version is not fetched (403 with the reason), and the
        policies that can decide without the bytes are evaluated in priority order; a deny refuses the fetch
        (logged, ``policy.denied``). Returns True (hold the bytes for the gate) when a matching quarantine, or a
        policy that needs the bytes and could refuse or quarantine them, is still to be decided."""
        self.quarantine.check_package(repo, cand.name, cand.version)
        event = _ACTION_ALIASES.get(action, action)
        policies = [p for p in self.active() if p.applies(repo.name, event)] if event in EVENTS else []
        if not policies:
            return False
        inputs: dict[str, Any] | None = None
        ctx, d_in, seen = None, "", []
        for pol in policies:
            if pol.needs_bytes:
                if pol.action == "tag":
                    continue
                return True  # undecidable here, and it (or what it would exempt) could refuse: the gate decides
            if inputs is None:
                import cel
                inputs = self.inputs(repo, cand.name, cand.version, event=event, actor=actor, new=cand)
                ctx, d_in = cel.Context(dict(inputs)), digest(inputs)
            d = self.evaluate(pol, inputs, event, ctx=ctx, inputs_digest=d_in)
            seen.append(d)
            if d.matched and d.action == "allow":
                return False
            if d.matched and d.action == "deny":
                assert inputs is not None
                self._log(repo, cand.name, cand.version, seen, inputs, actor)
                self._denied(core, repo, cand.name, cand.version, [{"filename": cand.filename}], actor, event, d)
            if d.matched and d.action == "quarantine":
                return True  # stored, then quarantined by the gate's follow-up: no byte reaches the client
        return False

    def _denied(self, core: "Core", repo: RepoInfo, name: str, version: str | None, files: list[dict[str, Any]],
                actor: str | None, event: str, d: Decision) -> None:
        emit_event(core, "policy.denied", repo.name, package=name, version=version, files=files, actor=actor,
                   detail={"event": event, **d.as_dict()})
        raise PolicyDenied(f"denied by policy '{d.policy}' (version {d.policy_version}): {d.message}")

    def after_ingest(self, core: "Core", repo: RepoInfo, result: Any, decisions: Iterable[Any], action: str = "") -> None:
        """Once the file is recorded: carry out the gate's quarantine / tag decisions."""
        mine = [Decision(int(d.detail.get("policy_id") or 0), d.policy, int(d.policy_version or 0),
                         str(d.detail.get("event") or action), True, d.result, d.message, tuple(d.tags))
                for d in decisions if getattr(d, "detail", {}).get("engine") == "cel"]
        if mine:
            self.apply(repo, result.file.name, result.file.version, mine)

    def apply(self, repo: RepoInfo, name: str, version: str | None, decisions: Iterable[Decision]) -> None:
        """Carry out matched quarantine / tag decisions (deny after the fact quarantines)."""
        tags: list[str] = []
        for d in decisions:
            if not d.matched:
                continue
            if d.action in ("quarantine", "deny") and version is not None:
                if self.quarantine.reason(repo.id, name, version) is None and \
                        self.quarantine.reason(repo.id, name, None) is None:
                    try:
                        self.quarantine.add(repo, name, version, reason=d.message or f"policy '{d.policy}'",
                                            actor=f"policy:{d.policy}", source=f"policy:{d.policy}@{d.policy_version}")
                    except Conflict:
                        pass
            elif d.action == "tag":
                tags.extend(d.tags)
        if tags:
            current = self.core.content.attributes(repo.id, name).get("tags") or []
            merged = sorted(set(current) | set(tags))
            if merged != sorted(current):
                self.core.set_attributes(repo, name, {"tags": merged}, actor="policy")
                emit_event(self.core, "package.tags_updated", repo.name, package=name, version=version, actor="policy",
                           detail={"tags": merged})

    def on_event(self, core: "Core", event: Any) -> None:
        """``scan.completed``: evaluate the scan policies on the scanned package version."""
        repo = core.repos.get(event.repository)
        if repo is None or not event.package:
            return
        self.evaluate_stored(repo, event.package, event.version, "scan", actor=getattr(event, "actor", None))

    def evaluate_stored(self, repo: RepoInfo, name: str, version: str | None, event: str, *,
                        actor: str | None = None) -> list[Decision]:
        if not any(p.applies(repo.name, event) for p in self.active()):
            return []
        files = [f for f in self.core.content.files(repo.id, name, include_hidden=True)
                 if version is None or f.version == version]
        inputs = self.inputs(repo, name, version, event=event, actor=actor, files=files)
        decisions = self.decide(repo, name, version, event, inputs, actor=actor)
        self.apply(repo, name, version, decisions)
        return decisions

    # -- dry run ----------------------------------------------------------------------------------------------------
    def dry_run(self, name: str | None, repo: RepoInfo, *, event: str | None = None,
                spec: Mapping[str, Any] | None = None, version: int | None = None) -> dict[str, Any]:
        """Evaluate one policy (stored, any version, enabled or not; or an unsaved ``spec``) over every package
        version of a repository: what it would do, without acting or logging."""
        if spec is not None:
            data = {"repositories": None, "message": None, "tags": [], "enabled": True, "priority": 100,
                    **_normalize_spec(spec)}
            _check_action_fields(data)

            class _V:  # the shape _compile reads
                pass

            v = _V()
            for k, val in data.items():
                setattr(v, k, val)
            v.version = 0  # type: ignore[attr-defined]
            pol = self._compile(0, str(spec.get("name") or "(unsaved)"), v)
        else:
            with self.core.sessions() as s:
                p = self._require(s, name or "")
                row = self._version_row(s, p.id, version or p.current_version)
                pol = self._compile(p.id, p.name, row)
        ev = _ACTION_ALIASES.get(event, event) if event else pol.events[0]
        if ev not in EVENTS:
            raise InvalidInput(f"event must be one of {', '.join(EVENTS)}")
        by_version: dict[tuple[str, str], list[Any]] = {}
        for f in self.core.content.files(repo.id, include_hidden=True):
            by_version.setdefault((f.name, f.version), []).append(f)
        attrs = self.core.content.all_attributes(repo.id)
        results = []
        counts: dict[str, int] = {}
        for (pname, pver), files in sorted(by_version.items()):
            inputs = self.inputs(repo, pname, pver, event=ev, files=files, attributes=attrs.get(pname, {}))
            d = self.evaluate(pol, inputs, ev)
            counts[d.action] = counts.get(d.action, 0) + 1
            results.append({"package": pname, "version": pver, "matched": d.matched, "would": d.action,
                            "message": d.message, "tags": list(d.tags), "error": d.error,
                            "inputs_digest": d.inputs_digest,
                            "quarantined": self.quarantine.reason(repo.id, pname, pver) is not None})
        return {"policy": pol.name, "policy_version": pol.version, "repository": repo.name, "event": ev,
                "applies_to_repository": pol.repositories is None or repo.name in pol.repositories,
                "enabled": pol.enabled, "evaluated": len(results), "summary": counts, "results": results}


def _meta_license(meta: Any) -> str:
    """The declared licence in a file's stored metadata, wherever the format put it (top level, or one level down
    such as a manifest or core metadata); an SPDX expression is preferred. Scan facts (a licence analyzer) win."""
    if not isinstance(meta, Mapping):
        return ""
    for d in (meta, *(v for v in meta.values() if isinstance(v, Mapping))):
        for k in ("license_expression", "license"):
            v = d.get(k)
            if isinstance(v, str) and v.strip():
                return v.strip()
            if isinstance(v, Mapping) and isinstance(v.get("type"), str):  # old npm {"type": "MIT"}
                return str(v["type"])
    return ""


def _age_days(when: datetime | None) -> float:
    if when is None:
        return 0.0
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (datetime.now(timezone.utc) - when).total_seconds() / 86400.0)
