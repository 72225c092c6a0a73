"""qthumb as a Testcontainers module: ``QthumbContainer``, testcontainers-python's
``DockerContainer`` for qthumb's image (``pip install 'qthumb[testcontainers]'``).

    with QthumbContainer("qthumb:latest", media_dir=clips) as qthumb:
        client = qencode3.client(qthumb.api_key, api_url=qthumb.url)

It exposes port 8000 on a host port of its own, waits for ``/readyz`` (the database migrated,
a worker ready), turns the mock's control endpoints on (``QTHUMB_CONTROL``: faults, reset, the
request journal) and tells qthumb the address the test reaches it by, so the URLs in status
answers (images, ``/storage/…``) work from the test. ``media_dir`` is a host folder mounted
read-only at the same path, from which queries may name local sources.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, cast

from testcontainers.core.container import DockerContainer
from testcontainers.core.wait_strategies import HttpWaitStrategy

from qthumb.app.tokens import made_api_key

PORT = 8000  # where the image's qthumb listens


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class QthumbContainer(DockerContainer):
    def __init__(
        self,
        image: str = "qthumb:latest",
        api_key: str | None = None,
        media_dir: str | os.PathLike[str] | None = None,
        seed: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(image, **kwargs)
        # under a seed, the key is the seed's too: the same every run
        self.api_key = api_key if api_key is not None else made_api_key("tc-", seed)
        self.with_env("QTHUMB_API_KEYS", self.api_key)
        self.with_env("QTHUMB_CONTROL", "1")
        if seed is not None:  # the same tokens on every run (QTHUMB_SEED)
            self.with_env("QTHUMB_SEED", seed)
        if media_dir is not None:
            self.with_media(media_dir)
        self.waiting_for(HttpWaitStrategy(PORT, "/readyz"))
        self._url = ""
        self._local = True

    def with_media(self, folder: str | os.PathLike[str]) -> QthumbContainer:
        """Queries may name files under ``folder`` (a host path) as their source."""
        path = str(Path(folder).resolve())
        self.with_volume_mapping(path, path, "ro")
        self.with_env("QTHUMB_LOCAL_SOURCE_DIRS", path)
        return self

    def _configure(self) -> None:
        """Before the container is made: a host port of its own (unless the caller bound one),
        and that address as qthumb's public URL, for the URLs its answers carry. A Docker
        engine on this machine (a unix socket, or localhost) gets a loopback port, reached by
        no other machine; a remote one publishes it on its own address."""
        engine = self.get_docker_client().host()
        self._local = engine in ("localhost", "127.0.0.1", "::1")
        host = "127.0.0.1" if self._local else engine
        ports = cast(dict[Any, Any], self.ports)  # docker-py's: host port, or (address, port)
        bound = ports.get(str(PORT), ports.get(PORT))
        if bound is None:
            port = _free_port()
            ports.pop(PORT, None)
            ports[str(PORT)] = ("127.0.0.1", port) if self._local else port
        else:
            port = int(bound[1] if isinstance(bound, tuple) else bound)
        self._url = f"http://{host}:{port}"
        self.env.setdefault("QTHUMB_PUBLIC_BASE_URL", self._url)

    def get_container_host_ip(self) -> str:
        """Where the published port is reached: loopback for an engine on this machine (even
        when testcontainers, run inside a container, would pick the bridge's gateway)."""
        return "127.0.0.1" if self._local else str(super().get_container_host_ip())

    @property
    def url(self) -> str:
        """The API's base URL for SDKs (``api_url``) and curl, once started."""
        if not self._url:
            raise RuntimeError("the container is not started")
        return self._url
