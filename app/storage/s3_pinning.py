"""S3 requests to a query's endpoint go to the address that passed the egress check.

botocore resolves an endpoint's name itself when it connects, so a name checked first and
resolved again by botocore could answer a public address to the check and a private one to the
connection (DNS rebinding). Here each request is resolved once, by the egress policy, and sent
by us to that address over urllib3 (the ``Host`` header, TLS SNI and certificate checks keep
the name), from botocore's public ``before-send`` event: botocore signs, retries and parses as
usual, and only the sending is ours. Connection errors are botocore's own exceptions, so its
standard retry mode treats them as it treats its own.

qthumb's own store (``QTHUMB_STORAGE_URL``, the operator's) is not checked or pinned.
"""

from __future__ import annotations

import socket
import threading
from collections import OrderedDict
from typing import Any
from urllib.parse import urlsplit

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import (
    BotoCoreError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ReadTimeoutError,
    SSLError,
)
from botocore.httpsession import get_cert_path
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, Retry, Timeout
from urllib3.exceptions import ConnectTimeoutError as URLLib3ConnectTimeoutError
from urllib3.exceptions import NewConnectionError, ProtocolError
from urllib3.exceptions import ReadTimeoutError as URLLib3ReadTimeoutError
from urllib3.exceptions import SSLError as URLLib3SSLError

from qthumb.app.egress import BlockedAddress, EgressPolicy

MAX_POOLS = 4  # addresses of one endpoint kept connected at once (an answer may change)


class BlockedEndpoint(BotoCoreError):  # type: ignore[misc]  # botocore has no types
    """The endpoint resolves to an address the egress policy refuses (never retried)."""

    fmt = "{message}"


class PinnedSender:
    """Sends one client's requests to the checked address of their endpoint."""

    def __init__(self, policy: EgressPolicy, connect_timeout: float, read_timeout: float) -> None:
        self.policy = policy
        self.timeout = Timeout(connect=connect_timeout, read=read_timeout)
        self._pools: OrderedDict[tuple[str, str, int, str], HTTPConnectionPool] = OrderedDict()
        self._lock = threading.Lock()

    def _pool(self, scheme: str, ip: str, port: int, host: str) -> HTTPConnectionPool:
        key = (scheme, ip, port, host)
        with self._lock:
            pool = self._pools.get(key)
            if pool is not None:
                self._pools.move_to_end(key)
                return pool
            if scheme == "https":
                pool = HTTPSConnectionPool(
                    ip,
                    port,
                    timeout=self.timeout,
                    maxsize=10,
                    server_hostname=host,
                    assert_hostname=host,
                    cert_reqs="CERT_REQUIRED",
                    ca_certs=get_cert_path(True),
                )
            else:
                pool = HTTPConnectionPool(ip, port, timeout=self.timeout, maxsize=10)
            self._pools[key] = pool
            while len(self._pools) > MAX_POOLS:
                self._pools.popitem(last=False)[1].close()
            return pool

    def send(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        """botocore's ``before-send`` handler: the response, sent to the checked address."""
        url = urlsplit(request.url)
        host = url.hostname or ""
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            ip = self.policy.resolve(host, port)
        except BlockedAddress as exc:
            raise BlockedEndpoint(message=str(exc)) from None
        pool = self._pool(url.scheme, str(ip), port, host)
        headers = dict(request.headers.items())
        headers["Host"] = url.netloc  # what was signed; the connection goes to ``ip``
        target = url.path + (f"?{url.query}" if url.query else "")
        encoding = headers.get("Transfer-Encoding", b"")
        chunked = (encoding.encode() if isinstance(encoding, str) else encoding) == b"chunked"
        try:
            answer = pool.urlopen(
                method=request.method,
                url=target or "/",
                body=request.body,
                headers=headers,
                retries=Retry(False),
                assert_same_host=False,
                preload_content=False,
                decode_content=False,
                chunked=chunked,
                enforce_content_length=False,
            )
            response = AWSResponse(request.url, answer.status, answer.headers, answer)
            if not request.stream_output:
                response.content  # noqa: B018  (read now, as botocore's own sender does)
            return response
        except URLLib3SSLError as exc:
            raise SSLError(endpoint_url=request.url, error=exc) from None
        except (NewConnectionError, socket.gaierror) as exc:
            raise EndpointConnectionError(endpoint_url=request.url, error=exc) from None
        except URLLib3ConnectTimeoutError as exc:
            raise ConnectTimeoutError(endpoint_url=request.url, error=exc) from None
        except URLLib3ReadTimeoutError as exc:
            raise ReadTimeoutError(endpoint_url=request.url, error=exc) from None
        except ProtocolError as exc:
            raise ConnectionClosedError(
                error=exc, request=request, endpoint_url=request.url
            ) from None
        except OSError as exc:
            raise HTTPClientError(error=exc) from None


def pin_connections(
    client: Any, policy: EgressPolicy, connect_timeout: float, read_timeout: float
) -> None:
    """Send ``client``'s requests to checked addresses only (see the module's docstring)."""
    sender = PinnedSender(policy, connect_timeout, read_timeout)
    client.meta.events.register("before-send.s3", sender.send)
