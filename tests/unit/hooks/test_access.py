"""Allowlists and the client address behind trusted proxies (core.access)."""

from __future__ import annotations

import pytest

from wharf.config import load_settings
from wharf.core.access import AccessRules, ClientAddress, compile_rules, validate_access
from wharf.core.errors import Forbidden, InvalidInput


@pytest.mark.parametrize("config,expected", [
    ({}, {}),
    ({"allow_read": ["10.1.2.3/8"]}, {"allow_read": ["10.0.0.0/8"]}),
    ({"allow_read": "10.0.0.0/8, 192.168.1.7"}, {"allow_read": ["10.0.0.0/8", "192.168.1.7/32"]}),
    ({"allow_write": []}, {"allow_write": []}),
    ({"allow_read": None, "allow_write": ["2001:db8::/32"]}, {"allow_write": ["2001:db8::/32"]}),
])
def test_validate_access_normalises(config, expected):
    assert validate_access(config) == expected


@pytest.mark.parametrize("config,words", [
    ({"allow_read": ["10.0.0.256"]}, "'10.0.0.256'"),
    ({"allow_read": [""]}, "CIDR"),
    ({"allow_write": 10}, "allow_write"),
    ({"allow_read": ["10.0.0.0/33"]}, "'10.0.0.0/33'"),
])
def test_validate_access_refuses(config, words):
    with pytest.raises(InvalidInput) as exc:
        validate_access(config)
    assert words in exc.value.message


def test_rules_read_write_and_mapped_addresses():
    assert compile_rules({"description": "x"}) is None
    rules = compile_rules({"allow_read": ["10.0.0.0/8", "2001:db8::/32"], "allow_write": []})
    assert isinstance(rules, AccessRules)
    assert rules.allows("read", "10.9.8.7") and rules.allows("read", "::ffff:10.1.1.1")
    assert rules.allows("read", "2001:db8::5") and not rules.allows("read", "192.0.2.1")
    assert not rules.allows("read", None) and not rules.allows("read", "not-an-address")
    assert not rules.allows("write", "10.9.8.7") and not rules.allows("admin", "10.9.8.7")  # [] = nobody
    only_read = compile_rules({"allow_read": ["10.0.0.0/8"]})
    assert only_read is not None and only_read.allows("write", "192.0.2.1")  # no write list: anyone (tokens apply)
    with pytest.raises(Forbidden) as exc:
        rules.check("write", "10.9.8.7", "staging")
    assert exc.value.message.startswith("write access to repository 'staging' is not allowed from address 10.9.8.7")


@pytest.mark.parametrize("peer,xff,expected", [
    ("127.0.0.1", None, "127.0.0.1"),                                  # no header: the peer
    ("127.0.0.1", b"203.0.113.9", "203.0.113.9"),                      # one trusted hop
    ("127.0.0.1", b"1.2.3.4, 203.0.113.9", "203.0.113.9"),             # left part written by the client: ignored
    ("127.0.0.1", b"203.0.113.9, 10.0.0.2", "203.0.113.9"),            # a chain of trusted proxies is skipped
    ("127.0.0.1", b"10.0.0.3, 10.0.0.2", "10.0.0.3"),                  # every hop trusted: the left-most
    ("127.0.0.1", b"203.0.113.9:51000", "203.0.113.9"),                # ports are dropped
    ("127.0.0.1", b"[2001:db8::1]:443", "2001:db8::1"),
    ("127.0.0.1", b"2001:db8::1", "2001:db8::1"),
    ("127.0.0.1", b"garbage", "garbage"),                              # kept as written: matches no list
    ("192.0.2.50", b"10.20.0.1", "192.0.2.50"),                        # an untrusted peer's header is ignored
])
def test_client_address(peer, xff, expected):
    resolver = ClientAddress(["127.0.0.1/32", "10.0.0.0/24"])
    assert resolver.resolve(peer, xff) == expected


def test_client_address_off_by_default_and_settings():
    assert not ClientAddress([]).enabled and ClientAddress([]).resolve("1.2.3.4", b"5.6.7.8") == "1.2.3.4"
    settings = load_settings(environ={"WHARF_TRUSTED_PROXIES": "127.0.0.1/32, 10.0.0.0/8"})
    assert settings.trusted_proxies == ("127.0.0.1/32", "10.0.0.0/8")
    with pytest.raises(InvalidInput):
        ClientAddress(["not-a-network"])
