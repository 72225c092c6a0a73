"""Outbound requests to addresses users hand us (sources, callbacks, S3 endpoints) reach public
addresses only, unless ``QTHUMB_ALLOWED_NETWORKS`` allows more.

Server-side request forgery is closed where the connection is made: the host is resolved once,
every address it resolves to is checked, and the request then goes to that checked address (the
``Host`` header and TLS SNI keep the name, so certificates still verify). Redirects are followed
here, one hop at a time, each checked again. There is no window for DNS rebinding between the
check and the connection.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_REDIRECTS = 5


class BlockedAddress(Exception):
    """The request would reach an address that is not allowed; the message says which."""


@dataclass(frozen=True)
class EgressPolicy:
    allowed: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_cidrs(cls, cidrs: Sequence[str]) -> EgressPolicy:
        return cls(tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs))

    def check_ip(self, host: str, ip: IPAddress) -> None:
        mapped = getattr(ip, "ipv4_mapped", None)
        target = mapped or ip
        if any(target in net for net in self.allowed):
            return
        if target.is_global and not target.is_multicast:
            return
        kind = next(
            (name for name in ("loopback", "link_local", "private", "multicast", "reserved",
                               "unspecified") if getattr(target, f"is_{name}")),
            "non-public",
        )  # fmt: skip
        raise BlockedAddress(
            f"{host} is {target}, a {kind.replace('_', '-')} address; "
            "set QTHUMB_ALLOWED_NETWORKS to allow it"
        )

    def resolve(self, host: str, port: int) -> IPAddress:
        """The address to connect to: every address ``host`` resolves to must be allowed."""
        try:
            literal = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            literal = None
        if literal is not None:
            self.check_ip(host, literal)
            return literal
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise BlockedAddress(f"{host} does not resolve ({exc.strerror})") from None
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
        for ip in addresses:
            self.check_ip(host, ip)
        return addresses[0]


def _pinned(url: httpx.URL, policy: EgressPolicy) -> tuple[httpx.URL, dict[str, Any], str]:
    if url.scheme not in ("http", "https") or not url.host:
        raise BlockedAddress(f"{url} is not an http(s) URL")
    port = url.port or (443 if url.scheme == "https" else 80)
    ip = policy.resolve(url.host, port)
    extensions: dict[str, Any] = {"sni_hostname": url.host} if url.scheme == "https" else {}
    return url.copy_with(host=str(ip)), extensions, url.netloc.decode("ascii")


@contextmanager
def guarded_stream(
    client: httpx.Client,
    method: str,
    url: str,
    policy: EgressPolicy,
    **kwargs: Any,
) -> Iterator[httpx.Response]:
    """``client.stream`` to a checked, pinned address, following redirects hop by hop."""
    current = httpx.URL(url)
    headers = dict(kwargs.pop("headers", None) or {})
    for _ in range(MAX_REDIRECTS + 1):
        target, extensions, host_header = _pinned(current, policy)
        request = client.build_request(
            method, target, headers={**headers, "Host": host_header}, extensions=extensions,
            **kwargs,
        )  # fmt: skip
        response = client.send(request, stream=True, follow_redirects=False)
        if response.is_redirect and "location" in response.headers:
            response.close()
            current = current.join(response.headers["location"])
            if response.status_code in (301, 302, 303):
                method, kwargs = "GET", {k: v for k, v in kwargs.items() if k not in ("data",)}
            continue
        try:
            yield response
        finally:
            response.close()
        return
    raise BlockedAddress(f"{url}: more than {MAX_REDIRECTS} redirects")


def guarded_request(
    client: httpx.Client, method: str, url: str, policy: EgressPolicy, **kwargs: Any
) -> httpx.Response:
    with guarded_stream(client, method, url, policy, **kwargs) as response:
        response.read()
        return response
