"""Network access: per-repository IP allowlists (``allow_read`` / ``allow_write``) and the client address behind
trusted reverse proxies (``X-Forwarded-For`` honoured only from ``trusted_proxies``).

Lists are parsed once per repository configuration (``compile_rules`` runs when the cached ``RepoInfo`` is built),
so a request costs one address parse (memoised) and a membership test per network."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable, Mapping, Sequence

from .errors import Forbidden, InvalidInput

__all__ = ["ACCESS_SETTINGS", "AccessRules", "ClientAddress", "compile_rules", "parse_networks", "validate_access"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
ACCESS_SETTINGS = ("allow_read", "allow_write")


def parse_networks(values: Iterable[str], what: str) -> tuple[Network, ...]:
    """CIDR ranges (or single addresses) -> networks; InvalidInput naming the bad entry."""
    out = []
    for value in values:
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(f"{what}: each entry must be an IP address or CIDR range such as '10.0.0.0/8'")
        try:
            out.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError as exc:
            raise InvalidInput(f"{what}: {value!r} is not an IP address or CIDR range ({exc})")
    return tuple(out)


def validate_access(config: Mapping[str, Any]) -> dict[str, list[str]]:
    """Check ``allow_read`` / ``allow_write`` of a repository's settings; returns them normalised
    (``10.1.2.3/8`` -> ``10.0.0.0/8``). An absent key means no restriction; an empty list means nobody."""
    out: dict[str, list[str]] = {}
    for key in ACCESS_SETTINGS:
        if key not in config or config[key] is None:
            continue
        value = config[key]
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise InvalidInput(f"setting {key!r} must be a list of CIDR ranges, e.g. ['10.0.0.0/8', '192.168.1.7']")
        out[key] = [str(n) for n in parse_networks(value, f"setting {key!r}")]
    return out


@lru_cache(maxsize=4096)
def _address(value: str) -> Address | None:
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:  # ::ffff:10.0.0.1 is 10.0.0.1
        return ip.ipv4_mapped
    return ip


def _within(addr: str | None, networks: tuple[Network, ...]) -> bool:
    ip = _address(addr) if addr else None
    if ip is None:
        return False
    return any(ip in net for net in networks)


_MEMO_LIMIT = 8192


@dataclass(frozen=True, slots=True)
class AccessRules:
    """A repository's compiled allowlists; None for a list means "anyone" (tokens still apply). Decisions are
    memoised per (list, address): a hot client costs one dict lookup, not a scan of the ranges."""

    read: tuple[Network, ...] | None
    write: tuple[Network, ...] | None
    _memo: dict[tuple[bool, str | None], bool] = field(default_factory=dict, compare=False, repr=False)

    def allows(self, action: str, addr: str | None) -> bool:
        reading = action == "read"
        networks = self.read if reading else self.write
        if networks is None:
            return True
        key = (reading, addr)
        hit = self._memo.get(key)
        if hit is None:
            if len(self._memo) >= _MEMO_LIMIT:
                self._memo.clear()
            hit = self._memo[key] = _within(addr, networks)
        return hit

    def check(self, action: str, addr: str | None, repository: str) -> None:
        if not self.allows(action, addr):
            kind = "read" if action == "read" else "write"
            raise Forbidden(f"{kind} access to repository '{repository}' is not allowed from address {addr or 'unknown'} "
                            f"(not in the repository's allow_{kind} list)", reason="ip-not-allowed")


def compile_rules(config: Mapping[str, Any]) -> AccessRules | None:
    """The rules of a (validated) repository configuration, or None when it restricts nothing (the common case)."""
    read, write = config.get("allow_read"), config.get("allow_write")
    if read is None and write is None:
        return None
    return AccessRules(None if read is None else parse_networks(read, "allow_read"),
                       None if write is None else parse_networks(write, "allow_write"))


def _strip_port(value: str) -> str:
    value = value.strip().strip('"')
    if value.startswith("["):  # [2001:db8::1]:443
        return value[1:].partition("]")[0]
    if value.count(":") == 1:  # 203.0.113.9:51000
        return value.partition(":")[0]
    return value


class ClientAddress:
    """The address of the client: the TCP peer, unless the peer is a trusted proxy; then the right-most address of
    ``X-Forwarded-For`` that is not itself a trusted proxy (entries left of it were written by the client and prove
    nothing). If every entry is trusted, the left-most one."""

    def __init__(self, trusted_proxies: Sequence[str]):
        self.trusted = parse_networks(trusted_proxies, "trusted_proxies")
        self._memo: dict[tuple[str | None, bytes | None], str | None] = {}

    @property
    def enabled(self) -> bool:
        return bool(self.trusted)

    def resolve(self, peer: str | None, forwarded_for: bytes | None) -> str | None:
        if not self.trusted or not forwarded_for or not peer:
            return peer
        key = (peer, forwarded_for)
        hit = self._memo.get(key, False)
        if hit is False:
            if len(self._memo) >= _MEMO_LIMIT:
                self._memo.clear()
            hit = self._memo[key] = self._resolve(peer, forwarded_for)
        return hit  # type: ignore[return-value]

    def _resolve(self, peer: str, forwarded_for: bytes) -> str | None:
        if not _within(peer, self.trusted):
            return peer
        hops = [_strip_port(h) for h in forwarded_for.decode("latin-1").split(",")]
        hops = [h for h in hops if h]
        for hop in reversed(hops):
            if not _within(hop, self.trusted):
                return hop[:64]  # an unparsable entry is kept as written: it matches no allowlist
        return hops[0][:64] if hops else peer
