"""The float side of ``workers.media.colour``: more-than-8-bit frames and HDR tone mapping, with
NumPy. Imported only when such a frame comes, so a run over 8-bit SDR sources (most of them)
never loads NumPy.
"""

from __future__ import annotations

from typing import Any

import av
import numpy as np
import numpy.typing as npt
from PIL import Image

Array = npt.NDArray[np.float32]
PQ = 16  # AVColorTransferCharacteristic (workers.media.colour names HLG too)
BT2020 = 9  # AVColorPrimaries
REFERENCE_WHITE = 100.0  # nits that make linear 1.0, as ffmpeg's tonemap filter counts
DEFAULT_PEAK = 1000.0 / REFERENCE_WHITE  # what ffmpeg's tonemap assumes without metadata
HLG_DISPLAY_PEAK = 1000.0

# Linear BT.2020 RGB to linear BT.709 RGB (ITU-R BT.2087).
_2020_TO_709 = np.array(
    [[1.6605, -0.5876, -0.0728], [-0.1246, 1.1329, -0.0083], [-0.0182, -0.1006, 1.1187]],
    dtype=np.float32,
)


# (Kr, Kb) of each AVColorSpace qthumb meets; unspecified: BT.709 from 720 lines up, else
# BT.601 (what players assume).
_MATRICES = {
    1: (0.2126, 0.0722),
    5: (0.299, 0.114),
    6: (0.299, 0.114),
    7: (0.212, 0.087),
    9: (0.2627, 0.0593),
    10: (0.2627, 0.0593),
}
FULL_RANGE = 2  # AVColorRange: JPEG / full


def signal_rgb(frame: av.VideoFrame, width: int, height: int) -> Array:
    """The frame's R'G'B' signal, 0..1, at ``width`` x ``height``: swscale scales the planes at
    16 bits, the matrix and range are applied here in float (exact for 10 and 12 bits)."""
    yuv = (
        frame.reformat(width=width, height=height, format="yuv444p16le", interpolation="AREA")
        .to_ndarray()
        .astype(np.float32)
    )
    kr, kb = _MATRICES.get(
        frame.colorspace, (0.2126, 0.0722) if frame.height >= 720 else (0.299, 0.114)
    )
    if frame.color_range == FULL_RANGE:
        y = yuv[..., 0] / 65535
        u, v = (yuv[..., 1] - 32768) / 65535, (yuv[..., 2] - 32768) / 65535
    else:
        y = (yuv[..., 0] - 4096) / (219 * 256)
        u, v = (yuv[..., 1] - 32768) / (224 * 256), (yuv[..., 2] - 32768) / (224 * 256)
    kg = 1 - kr - kb
    r = y + 2 * (1 - kr) * v
    b = y + 2 * (1 - kb) * u
    g = (y - kr * r - kb * b) / kg
    rgb: Array = np.stack([r, g, b], axis=-1)
    return rgb


def _to_8bit(signal: Array) -> Image.Image:
    return Image.fromarray(np.round(np.clip(signal, 0, 1) * 255).astype(np.uint8))


def deep_to_rgb(frame: av.VideoFrame, width: int, height: int) -> Image.Image:
    """A more-than-8-bit SDR frame as 8-bit RGB: the matrix and range in float."""
    return _to_8bit(signal_rgb(frame, width, height))


def _pq_to_linear(signal: Array) -> Array:
    """SMPTE ST 2084 EOTF: signal 0..1 to nits / 100."""
    m1, m2 = 2610 / 16384, 2523 / 4096 * 128
    c1, c2, c3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
    p = np.power(np.clip(signal, 0, 1), 1 / m2)
    nits: Array = 10000 * np.power(np.maximum(p - c1, 0) / (c2 - c3 * p), 1 / m1)
    return nits / np.float32(REFERENCE_WHITE)


def _hlg_to_linear(signal: Array) -> Array:
    """HLG to display light: the inverse OETF (BT.2100), then a 1000-nit display's system
    gamma of 1.2 on each channel, as zimg (ffmpeg's zscale) does; BT.2100's OOTF on luminance
    alone keeps saturated colours a little paler than ffmpeg's reference."""
    a, b, c = 0.17883277, 0.28466892, 0.55991073
    e: Array = np.clip(signal, 0, 1)
    scene = np.where(e <= 0.5, e * e / 3, (np.exp((e - c) / a) + b) / 12)
    display = HLG_DISPLAY_PEAK * np.power(scene, 1.2) / REFERENCE_WHITE
    # float32 already at run time (NEP 50); numpy >= 2.3's stubs type np.where as float64
    return display.astype(np.float32, copy=False)


def _hable(x: Array | float) -> Any:
    a, b, c, d, e, f = 0.15, 0.50, 0.10, 0.20, 0.02, 0.30
    return (x * (x * a + c * b) + d * e) / (x * (x * a + b) + d * f) - e / f


def _bt1886_encode(linear: Array) -> Array:
    """Display light to a BT.709 signal for a BT.1886 display (gamma 2.4), as zimg does for
    display-referred light (ffmpeg's zscale default)."""
    encoded: Array = np.power(np.clip(linear, 0, 1), 1 / 2.4)
    return encoded


def signal_peak(frame: av.VideoFrame) -> float:
    """The brightest the stream says it gets, in units of 100 nits (ffmpeg's rule)."""
    side: list[Any] = list(frame.side_data)
    for data in side:
        name = str(getattr(data.type, "name", data.type))
        if name == "CONTENT_LIGHT_LEVEL":
            max_cll = int.from_bytes(bytes(data)[:4], "little")
            if max_cll:
                return max_cll / REFERENCE_WHITE
    for data in side:
        name = str(getattr(data.type, "name", data.type))
        if name == "MASTERING_DISPLAY_METADATA":
            raw = bytes(data)
            # AVMasteringDisplayMetadata: 8 rationals of primaries/white, then min and max
            # luminance (each two int32), then two flags.
            num = int.from_bytes(raw[72:76], "little", signed=True)
            den = int.from_bytes(raw[76:80], "little", signed=True)
            if num > 0 and den > 0:
                return num / den / REFERENCE_WHITE
    return DEFAULT_PEAK


def tone_mapped(frame: av.VideoFrame, width: int, height: int) -> Image.Image:
    signal = signal_rgb(frame, width, height)
    linear = _pq_to_linear(signal) if frame.color_trc == PQ else _hlg_to_linear(signal)
    if frame.color_primaries == BT2020:
        linear = np.maximum(linear @ _2020_TO_709.T, 0)
    peak = signal_peak(frame)
    brightest = np.maximum(linear.max(axis=2), 1e-6)
    scale = (_hable(brightest) / _hable(peak)) / brightest
    mapped = linear * scale[..., None]
    return _to_8bit(_bt1886_encode(mapped))
