"""A decoded frame with how it is meant to be shown (its display size and rotation), turned into
an image of the asked size only when it is sized: what the readers hand to the outputs."""

from __future__ import annotations

from dataclasses import dataclass

import av
from PIL import Image

from qthumb.workers.media.colour import to_rgb

_ROTATIONS = {
    90: Image.Transpose.ROTATE_90,
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_270,
}


@dataclass(frozen=True)
class Picture:
    """A decoded frame and how it is meant to be shown.

    ``display_size`` is the size after the sample aspect ratio and the rotation; ``rotation`` is
    counter-clockwise degrees (as PIL turns). Pixels are converted only when sized (``to_image``),
    so a 1080p frame headed for a 160x90 tile is scaled once, by swscale.
    """

    frame: av.VideoFrame
    time: float
    display_size: tuple[int, int]
    rotation: int

    def to_image(self, width: int, height: int, deinterlace: bool | None = None) -> Image.Image:
        """RGB image of ``width`` x ``height`` in display orientation."""
        turned = self.rotation in (90, 270)
        w, h = (height, width) if turned else (width, height)
        image = to_rgb(self.frame, w, h, deinterlace)
        if self.rotation in _ROTATIONS:
            image = image.transpose(_ROTATIONS[self.rotation])
        return image
