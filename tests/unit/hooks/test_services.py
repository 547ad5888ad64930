"""Entitlement counters and webhook signing/secret storage, in-process on SQLite."""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from typing import Iterator

import pytest
from sqlalchemy import event as sa_event

from wharf.config import Settings
from wharf.core.errors import Unauthorized
from wharf.core.events import Event
from wharf.core.services import Core
from wharf.core.webhooks import SecretBox, event_payload, sign, verify


@pytest.fixture
def core(tmp_path) -> Iterator[Core]:
    c = Core(Settings(data=tmp_path / "data", entitlement_flush=3600), migrate=True)
    yield c
    c.close()


def test_download_counts_are_batched(core):
    core.create_repository(name="shop", format="python", actor="t")
    ent, secret = core.entitlements.create(name="acme", repositories=["shop"], packages=["acme-*"], expires_at=None,
                                           actor="t")
    principal = core.tokens.authenticate(secret)
    assert principal.entitlement and principal.packages == ("acme-*",) and principal.can("read", "shop")
    assert not principal.can("write", "shop") and not principal.can("read", "other")
    updates = []

    def _count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("UPDATE ENTITLEMENTS"):
            updates.append(statement)

    sa_event.listen(core.engine, "before_cursor_execute", _count)
    for _ in range(1000):
        core.entitlements.count(ent.id)
    assert updates == []  # nothing written per download
    assert core.entitlements.flush() == 1000 and len(updates) == 1
    assert core.entitlements.get(ent.id).downloads == 1000
    core.entitlements.count(ent.id)
    core.entitlements.close()  # shutdown writes what is pending
    assert core.entitlements.get(ent.id).downloads == 1001

    core.entitlements.revoke(ent.id, actor="t")
    with pytest.raises(Unauthorized):
        core.tokens.authenticate(secret)


def test_signature_is_hmac_of_timestamp_dot_body():
    body = b'{"event":"ping"}'
    ts = str(int(time.time()))
    expected = "sha256=" + hmac.new(b"k" * 20, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert sign("k" * 20, ts, body) == expected
    assert verify("k" * 20, ts, body, expected)
    assert not verify("k" * 20, ts, body + b" ", expected)
    assert not verify("k" * 20, str(int(time.time()) - 3600), body, sign("k" * 20, str(int(time.time()) - 3600), body))


def test_secret_box_encrypts_at_rest(tmp_path):
    box = SecretBox(tmp_path / "state" / "webhooks.key")
    sealed = box.seal("whsec_topsecret")
    assert "topsecret" not in sealed and sealed.startswith("v1:") and box.seal("whsec_topsecret") != sealed
    assert SecretBox(tmp_path / "state" / "webhooks.key").open(sealed) == "whsec_topsecret"  # key kept in the file
    assert oct(os.stat(tmp_path / "state" / "webhooks.key").st_mode & 0o777) == "0o600"
    with pytest.raises(Exception):
        SecretBox(tmp_path / "other.key").open(sealed)  # another data directory's key cannot read it


def test_events_become_deliveries_only_for_matching_webhooks(core):
    core.create_repository(name="dev", format="python", actor="t")
    core.create_repository(name="prod", format="python", actor="t")
    everything, _ = core.webhooks.create(url="http://127.0.0.1:9/all", actor="t")
    dev_created, _ = core.webhooks.create(url="http://127.0.0.1:9/dev", repository="dev", events=["package.created"],
                                          actor="t")
    ev = Event("package.created", "dev", "pkg", "1.0", ({"filename": "f", "key": "f", "sha256": "0" * 64, "size": 1},),
               "token:x#1", {"action": "upload"}, "python", 7)
    made = core.webhooks.on_event(ev)
    assert sorted(d.webhook_id for d in made) == sorted([everything.id, dev_created.id])
    assert [d.webhook_id for d in core.webhooks.on_event(Event("package.deleted", "dev"))] == [everything.id]
    assert [d.webhook_id for d in core.webhooks.on_event(Event("package.created", "prod"))] == [everything.id]
    payload = event_payload(ev)
    assert payload["event"] == "package.created" and payload["files"][0]["sha256"] == "0" * 64 and payload["id"] == 7
    # with no webhook at all, events queue no background work for webhooks
    for hook_id in (everything.id, dev_created.id):
        core.webhooks.delete(hook_id, actor="t")
    core.webhooks.on_event(Event("package.created", "dev"))  # (refreshes what this process knows)
    assert not core.webhooks._wanted(Event("package.created", "dev"))
