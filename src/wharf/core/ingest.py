"""The ingest pipeline every new file goes through (upload, proxy fetch, promotion):
validate (the format did it) -> gates (policies may refuse) -> record + ``package.created`` (one transaction)
-> follow-ups.

A gate sees the candidate before anything is recorded: raising ``PolicyDenied`` refuses it and nothing is kept.
Gates return ``Decision``s; after the file is recorded the ``after_ingest`` hooks act on them (quarantine, tags).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # pragma: no cover
    from .content import AddResult, NewArtifact
    from .interfaces import RepoInfo
    from .services import Core

__all__ = ["Decision", "Gate", "AfterIngest", "ACTIONS"]

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
