"""Sizing rules (docs/outputs.md) as pure functions."""

from __future__ import annotations

import pytest

from qthumb.app.qencode.query import Sizing
from qthumb.workers.media.imaging import target_size


@pytest.mark.parametrize(
    ("display", "sizing", "size"),
    [
        ((1920, 1080), Sizing(), (1920, 1080)),
        ((1920, 1080), Sizing(width=320), (320, 180)),
        ((1920, 1080), Sizing(height=90), (160, 90)),
        ((1920, 1080), Sizing(width=100, height=100), (100, 100)),
        ((1920, 1080), Sizing(resolution=720, width=10), (1280, 720)),
        ((1080, 1920), Sizing(resolution=720), (720, 1280)),
        ((1080, 1920), Sizing(width=90), (90, 160)),
        ((4000, 2), Sizing(width=100), (100, 1)),
    ],
)
def test_target_size(display, sizing, size):
    assert target_size(display, sizing) == size
