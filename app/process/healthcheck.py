"""``python -I -m qthumb.app.process.healthcheck``: the container's HEALTHCHECK, for every role.

Healthy when the API answers ``/healthz`` on ``QTHUMB_PORT``, or, for a worker pool alone,
when its ``/metrics`` answers on ``QTHUMB_METRICS_PORT``. Exit 0 healthy, 1 not.
"""

from __future__ import annotations

import sys
import urllib.request

from qthumb.app.settings import Settings, settings_or_exit


def healthy(settings: Settings) -> bool:
    urls = [f"http://127.0.0.1:{settings.port}/healthz"]
    if settings.metrics_port:
        urls.append(f"http://127.0.0.1:{settings.metrics_port}/metrics")
    for url in urls:
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:  # loopback only
                if reply.status == 200:
                    return True
        except OSError:
            continue
    return False


if __name__ == "__main__":
    sys.exit(0 if healthy(settings_or_exit()) else 1)
