from __future__ import annotations

import base64

import pytest

from wharf.core.auth import Principal, credentials_from_header, hash_token, validate_scopes
from wharf.core.errors import InvalidInput, Unauthorized


def test_actions_imply_lower_ones_and_scopes_are_per_repository():
    p = Principal(1, "t", (("dev", "write"), ("prod", "read")))
    assert p.can("read", "dev") and p.can("write", "dev") and not p.can("admin", "dev")
    assert p.can("read", "prod") and not p.can("write", "prod")
    assert not p.can("read", "other") and not p.is_admin
    admin = Principal(2, "a", (("*", "admin"),))
    assert admin.can("write", "anything") and admin.is_admin


@pytest.mark.parametrize("value,secret", [
    (b"Bearer wharf_abc", "wharf_abc"),
    (b"Basic " + base64.b64encode(b"__token__:wharf_abc"), "wharf_abc"),
    (b"Basic " + base64.b64encode(b"alice:wharf_abc"), "wharf_abc"),
    (None, None),
])
def test_credentials(value, secret):
    assert credentials_from_header(value) == secret


@pytest.mark.parametrize("value", [b"Basic !!!", b"Basic " + base64.b64encode(b"nocolon"), b"Digest x"])
def test_bad_credentials(value):
    with pytest.raises(Unauthorized):
        credentials_from_header(value)


def test_scope_validation():
    assert validate_scopes([{"repository": "dev", "actions": ["write", "read"]}]) == [
        {"repository": "dev", "actions": ["read", "write"]}]
    for bad in ([], [{"repository": "dev", "actions": ["fly"]}], [{"actions": ["read"]}]):
        with pytest.raises(InvalidInput):
            validate_scopes(bad)


def test_hash_is_sha256_hex_not_the_secret():
    h = hash_token("wharf_secret")
    assert len(h) == 64 and "secret" not in h
