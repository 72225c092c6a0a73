"""A decoded frame to an 8-bit sRGB/BT.709 picture, with its colours right.

- 8-bit SDR: swscale straight to RGB, with the frame's own matrix (BT.601, BT.709…) and range.
- More than 8 bits (HEVC Main 10, ProRes, AV1 10-bit): swscale only scales (to 16-bit YUV);
  the matrix and range are applied here in float and rounded once. swscale's 10-bit → rgb24
  path is about 8 % too dark on limited range, and its rgb48 path 0.4 % (measured here on
  yuv422p10le and yuv420p10le).
- HDR (PQ, HLG): tone-mapped to SDR BT.709 the way ffmpeg's
  ``zscale=t=linear:npl=100,zscale=p=bt709,tonemap=hable:desat=0,zscale=t=bt709`` does: to
  linear light (100 nits = 1.0; HLG as a 1000-nit display shows it), BT.2020
  primaries to BT.709, Hable's curve on the brightest channel with the peak the stream's
  metadata gives (MaxCLL, else the mastering display's, else 1000 nits), then the BT.709
  transfer for a BT.1886 display (gamma 2.4). A naive conversion shows PQ as washed-out grey.
- Interlaced frames (flagged, or every frame with ``deinterlace: 1``): the top field,
  line-doubled, so a still shows no combing.

Scaling happens first (in the source's own signal), so the float maths runs on thumbnail-sized
arrays, not 4K frames. The float maths lives in ``workers.media.deep_colour`` and is imported for
the
first frame that needs it: 8-bit SDR, most sources, never loads NumPy (a command starts faster).
"""

from __future__ import annotations

from typing import Any

import av
from PIL import Image

PQ, HLG = 16, 18  # AVColorTransferCharacteristic


def is_hdr(frame: av.VideoFrame) -> bool:
    return frame.color_trc in (PQ, HLG)


def _deep(frame: av.VideoFrame) -> bool:
    return any(c.bits > 8 for c in frame.format.components)


def to_rgb(
    frame: av.VideoFrame, width: int, height: int, deinterlace: bool | None = None
) -> Image.Image:
    """The frame at ``width`` x ``height`` (stored orientation), as 8-bit RGB. Its top field
    alone when ``deinterlace`` (the format's ``deinterlace: 1``), or by default when the
    frame says it is interlaced."""
    if frame.interlaced_frame if deinterlace is None else deinterlace:
        return _deinterlaced(frame, width, height)
    return _progressive(frame, width, height)


def _progressive(frame: av.VideoFrame, width: int, height: int) -> Image.Image:
    if is_hdr(frame) or _deep(frame):
        from qthumb.workers.media import deep_colour

        if is_hdr(frame):
            return deep_colour.tone_mapped(frame, width, height)
        return deep_colour.deep_to_rgb(frame, width, height)
    if (width, height) == (frame.width, frame.height):
        rgb = frame.reformat(format="rgb24")
    else:
        rgb = frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA")
    # Pillow reads the frame's own buffer (PyAV's to_image copies it first, twice the memory:
    # 192 MB more for a 64-Mpx tile).
    plane = rgb.planes[0]
    pixels: Any = plane  # a buffer-protocol object, which Pillow's stubs do not name
    return Image.frombuffer("RGB", (width, height), pixels, "raw", "RGB", plane.line_size, 1)


def _deinterlaced(frame: av.VideoFrame, width: int, height: int) -> Image.Image:
    """The top field alone, stretched back to the frame's height (no combing)."""
    field_lines = max(1, frame.height // 2)
    full = _progressive(frame, width, frame.height)
    # Every other line: Pillow reads the rows with twice the stride.
    top = Image.frombuffer(
        "RGB", (width, field_lines), full.tobytes(), "raw", "RGB", 2 * 3 * width, 1
    )
    return top.resize((width, height), Image.Resampling.BILINEAR)
