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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # httpx is imported where a request is made: it costs a command 60 ms
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
        """Allowed networks first; then an IPv6 address that carries an IPv4 one (mapped,
        NAT64, 6to4, Teredo, IPv4-compatible or -translated) is judged by what it carries,
        since that is where its packets end up; anything else must be public unicast."""
        if self._allowed(ip):
            return
        carried = embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else []
        for inner in carried:
            if self._allowed(inner):
                continue
            kind = _non_public_kind(inner)
            if kind:
                raise BlockedAddress(
                    f"{_named(host, ip)}which carries {inner}, {_article(kind)} {kind} address; "
                    "set QTHUMB_ALLOWED_NETWORKS to allow it"
                )
        if carried:
            return
        kind = _non_public_kind(ip)
        if kind:
            raise BlockedAddress(
                f"{_named(host, ip)}{_article(kind)} {kind} address; "
                "set QTHUMB_ALLOWED_NETWORKS to allow it"
            )

    def _allowed(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.allowed)

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
        except (UnicodeError, ValueError, OverflowError):  # a name no resolver takes
            raise BlockedAddress(f"{host[:100]} is not a valid host name") from None
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
        for ip in addresses:
            self.check_ip(host, ip)
        return addresses[0]


def _named(host: str, ip: IPAddress) -> str:
    """``localhost is 127.0.0.1, `` or, for an address given as such, ``127.0.0.1 is ``."""
    try:
        literal = ipaddress.ip_address(host.strip("[]")) == ip
    except ValueError:
        literal = False
    return f"{host} is " if literal else f"{host} is {ip}, "


# IPv6 prefixes whose last 32 bits are an IPv4 address the packets are meant for.
_LOW32_CARRIERS = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "64:ff9b::/96",  # NAT64, well-known prefix (RFC 6052)
        "64:ff9b:1::/48",  # NAT64, local use (RFC 8215)
        "::ffff:0:0:0/96",  # IPv4-translated (RFC 2765)
        "::/96",  # IPv4-compatible (deprecated), minus :: and ::1
    )
)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries, in every form a router may act on."""
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)  # (server, client)
    if int(ip) > 1 and any(ip in net for net in _LOW32_CARRIERS):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def _non_public_kind(ip: IPAddress) -> str | None:
    """What kind of non-public address ``ip`` is, or ``None`` for a public unicast one."""
    for name in (
        "unspecified",
        "loopback",
        "link_local",
        "site_local",
        "multicast",
        "private",
        "reserved",
    ):
        if getattr(ip, f"is_{name}", False):
            return name.replace("_", "-")
    return None if ip.is_global else "non-public"


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def url_problem(url: str) -> str | None:
    """Why ``url`` is not an http(s) URL qthumb could request (``None`` when it is): checked
    when a query arrives, and again by everything that connects."""
    import httpx

    try:
        parsed = httpx.URL(url)
        port = parsed.port
        host = parsed.host
    except (httpx.InvalidURL, ValueError, UnicodeError) as exc:
        return f"not a valid URL ({str(exc)[:100]})"
    if parsed.scheme not in ("http", "https"):
        return "not an http(s) URL"
    if not host:
        return "the URL names no host"
    if port is not None and not 0 < port < 65536:
        return f"port {port} is out of range"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        try:
            host.encode("idna")  # what the resolver will do with it
        except UnicodeError:
            return f"the host {host[:100]!r} is not a valid name"
    return None


def _pinned(url: httpx.URL, policy: EgressPolicy) -> tuple[httpx.URL, dict[str, Any], str]:
    problem = url_problem(str(url))
    if problem:
        raise BlockedAddress(problem)
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
    max_redirects: int = MAX_REDIRECTS,
    **kwargs: Any,
) -> Iterator[httpx.Response]:
    """``client.stream`` to a checked, pinned address, following at most ``max_redirects``
    redirects hop by hop."""
    import httpx

    problem = url_problem(url)
    if problem:
        raise BlockedAddress(problem)
    current = httpx.URL(url)
    headers = dict(kwargs.pop("headers", None) or {})
    for _ in range(max_redirects + 1):
        target, extensions, host_header = _pinned(current, policy)
        request = client.build_request(
            method,
            target,
            headers={**headers, "Host": host_header},
            extensions=extensions,
            **kwargs,
        )
        response = client.send(request, stream=True, follow_redirects=False)
        if response.is_redirect and "location" in response.headers:
            response.close()
            try:
                current = current.join(response.headers["location"])
            except (httpx.InvalidURL, ValueError, UnicodeError):
                raise BlockedAddress("a redirect's Location is not a valid URL") from None
            if response.status_code in (301, 302, 303):
                method, kwargs = "GET", {k: v for k, v in kwargs.items() if k not in ("data",)}
            continue
        try:
            yield response
        finally:
            response.close()
        return
    raise BlockedAddress(f"{url}: more than {max_redirects} redirects")


def guarded_request(
    client: httpx.Client, method: str, url: str, policy: EgressPolicy, **kwargs: Any
) -> httpx.Response:
    with guarded_stream(client, method, url, policy, **kwargs) as response:
        response.read()
        return response
