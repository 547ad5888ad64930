"""The ingest pipeline every new file goes through (upload, proxy fetch, promotion):
validate (the format did it) -> gates (policies may refuse) -> record + ``package.created`` (one transaction)
-> follow-ups.

A gate sees the candidate before anything is recorded: raising ``PolicyDenied`` refuses it and nothing is kept.
Gates return ``Decision``s; after the file is recorded the ``after_ingest`` hooks act on them (quarantine, tags).

A proxy's first fetch of a file asks ``Core.admit`` before a byte is fetched (admissions see a ``Candidate``: what is
known from the upstream's index, not the bytes). An admission refuses by raising (403: nothing is fetched), or asks
the fetch to *hold* the bytes until the gates have decided on the stored file, for rules that need the bytes (a
licence, a size) and could still refuse or quarantine them: the client then gets nothing the gates did not pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # pragma: no cover
    from .content import AddResult, NewArtifact
    from .interfaces import RepoInfo
    from .services import Core

__all__ = ["Decision", "Gate", "AfterIngest", "Candidate", "Admission", "ACTIONS"]

ACTIONS = ("upload", "proxy_fetch", "promotion")


@dataclass(frozen=True)
class Decision:
    """One policy's verdict on one operation: ``allow``, ``deny``, ``quarantine`` or ``tag``."""

    policy: str
    result: str
    message: str | None = None
    tags: tuple[str, ...] = ()
    policy_version: int | None = None
    id: int | None = None  # the decision-log entry, when the policy area keeps one
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"policy": self.policy, "policy_version": self.policy_version, "result": self.result,
                "message": self.message, "tags": list(self.tags), "id": self.id}


# gate(core, repo, new, action, actor) -> decisions; raise PolicyDenied to refuse
Gate = Callable[["Core", "RepoInfo", "NewArtifact", str, str], list[Decision]]
# after_ingest(core, repo, result, decisions, action): runs once the file is recorded (a new file only)
AfterIngest = Callable[["Core", "RepoInfo", "AddResult", list[Decision], str], None]


@dataclass(frozen=True)
class Candidate:
    """A file a proxy is about to fetch: what its upstream's index says, before the bytes are here."""

    format: str
    name: str
    version: str | None
    filename: str
    origin: str = ""


# admission(core, repo, candidate, action, actor) -> hold the bytes until the gates decided; raise to refuse
Admission = Callable[["Core", "RepoInfo", Candidate, str, str], bool]
