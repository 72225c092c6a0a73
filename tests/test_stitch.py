"""``stitch``: sources joined into one timeline for every output. Three pieces whose frames
carry their piece and index as brightness (the second narrower, so it is letterboxed; the last
with sound): a thumbnail's time, a series' frames, a sprite's VTT and an mp4's length all
follow the joined timeline, frame-exact (a neighbouring frame is 2 luma levels away)."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from qthumb.app.errors import BadQuery, FieldRequired
from qthumb.app.qencode.query import Query, parse_query
from qthumb.app.qencode.stitch import Piece
from qthumb.app.settings import Settings
from tests.test_real_sources import ffmpeg, run
from tests.test_real_sources import settings as pipeline_settings

settings = pipeline_settings  # the pipeline as a library, as there
# name: (size, seconds, luma of frame 0): frame n is 16 + 2n, 120 + 2n, 180 + 2n
PIECES = {"a": ("64x48", 2, 16), "b": ("32x48", 1, 120), "c": ("64x48", 1, 180)}


@pytest.fixture(scope="module")
def pieces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pieces")
    for name, (size, seconds, base) in PIECES.items():
        lavfi = f"color=c=black:s={size}:r=25:d={seconds},geq=lum='{base}+2*N':cb=128:cr=128"
        ffmpeg("-f", "lavfi", "-i", lavfi, "-c:v", "libx264", "-preset", "veryfast", "-qp", "2",
               "-bf", "2", "-pix_fmt", "yuv420p", str(folder / f"{name}.mp4"))  # fmt: skip
    ffmpeg("-i", str(folder / "c.mp4"), "-f", "lavfi", "-i", "sine=frequency=440:duration=1",
           "-c:v", "copy", "-c:a", "aac", "-shortest", str(folder / "c-sound.mp4"))  # fmt: skip
    return folder


def shown(image: Image.Image) -> tuple[str, float]:
    """(piece, frame index) the middle of a picture carries (limited-range luma via RGB)."""
    grey = image.convert("L")
    w, h = grey.size
    luma = float(np.asarray(grey.crop((w * 3 // 8, h // 4, w * 5 // 8, h * 3 // 4))).mean())
    luma = luma * 219 / 255 + 16
    piece = "c" if luma >= 179 else ("b" if luma >= 119 else "a")
    return piece, (luma - PIECES[piece][2]) / 2


# The timeline: a (2 s, frames 0-49), b from 0.4 s for 0.4 s (frames 10-19), c (1 s, 0-24)
TIMELINE = [(0.0, ("a", 0)), (0.5, ("a", 12)), (1.96, ("a", 49)), (2.0, ("b", 10)),
            (2.2, ("b", 15)), (2.36, ("b", 19)), (2.4, ("c", 0)), (3.0, ("c", 15)),
            (3.36, ("c", 24))]  # fmt: skip


def test_every_output_follows_the_joined_timeline(settings: Settings, pieces: Path):
    stitch = [str(pieces / "a.mp4"), {"url": str(pieces / "b.mp4"), "start_time": "0.4",
              "duration": 0.4}, str(pieces / "c-sound.mp4")]  # fmt: skip
    formats = [{"output": "thumbnail", "start_time": t} for t, _ in TIMELINE]
    formats += [{"output": "thumbnails", "interval": 0.5},
                {"output": "thumbnails", "interval": 1, "sprite": 1, "columns": 2},
                {"output": "mp4", "size": "64x48"}]  # fmt: skip
    out = run(settings, None, formats, stitch=stitch)
    for n, (_, (piece, index)) in enumerate(TIMELINE):
        with Image.open(out / str(n) / "thumbnail.png") as image:
            got_piece, got = shown(image)
        assert got_piece == piece and abs(got - index) < 0.5, (n, got_piece, got)
    series = sorted((out / str(len(TIMELINE))).glob("thumb_*.png"))
    want = [("a", 0), ("a", 12), ("a", 25), ("a", 37), ("b", 10), ("c", 2), ("c", 15)]
    for path, (piece, index) in zip(series, want, strict=True):
        with Image.open(path) as image:
            got_piece, got = shown(image)
        assert got_piece == piece and abs(got - index) < 0.5, (path.name, got_piece, got)
    vtt = (out / str(len(TIMELINE) + 1) / "thumbnails.vtt").read_text()
    assert vtt.rstrip().splitlines()[-2] == "00:00:03.000 --> 00:00:03.400"
    with av.open(str(out / str(len(TIMELINE) + 2) / "video.mp4")) as video:
        assert video.duration / 1e6 == pytest.approx(3.4, abs=0.05)
        (sound,) = video.streams.audio  # c's sound, a and b silent: its length is the whole
        assert float(sound.duration * sound.time_base) == pytest.approx(3.4, abs=0.05)


def test_a_piece_that_fails_is_named(settings: Settings, pieces: Path):
    from qthumb.workers.failures import TaskFailure

    with pytest.raises(TaskFailure, match=r"stitch\[1\]: start_time 5 s is past its end"):
        late = {"url": str(pieces / "b.mp4"), "start_time": 5}
        run(settings, None, [{"output": "thumbnail"}], stitch=[str(pieces / "a.mp4"), late])
    with pytest.raises(TaskFailure, match=r"stitch\[0\]: .*not-there"):
        run(settings, None, [{"output": "thumbnail"}], stitch=[str(pieces / "not-there.mp4")])
    # each piece is fetched as a source is: the same egress rules
    with pytest.raises(
        TaskFailure, match=r"stitch\[1\]: .*169\.254\.169\.254 is a link-local address"
    ):
        run(settings, None, [{"output": "thumbnail"}],
            stitch=[str(pieces / "a.mp4"), "http://169.254.169.254/latest/video.mp4"])  # fmt: skip


@pytest.mark.parametrize(("query", "error", "message"), [
    ({"source": "/a.mp4", "stitch": ["/b.mp4"]}, BadQuery, "give one of them"),
    ({"stitch": []}, FieldRequired, "query.stitch"),
    ({"stitch": "not json"}, BadQuery, "must be a list of sources"),
    ({"stitch": [{"start_time": 1}]}, FieldRequired, r"query.stitch\[0\].url"),
    ({"stitch": [5]}, BadQuery, r"query.stitch\[0\] must be a URL or an object"),
    ({"stitch": [{"url": "/a.mp4", "duration": 0}]}, BadQuery, "duration must be greater"),
    ({"stitch": ["http://[::1"]}, BadQuery, r"query.stitch\[0\].url"),
    ({"stitch": ["/a.mp4"] * 101}, BadQuery, "at most 100"),
])  # fmt: skip
def test_a_bad_stitch_is_refused_naming_the_piece(query: dict, error: type, message: str):
    with pytest.raises(error, match=message):
        parse_query({**query, "format": [{"output": "thumbnail"}]})


def test_a_list_as_source_and_json_text_are_stitch_and_the_plan_keeps_it():
    """The Node SDK sends a list given as source as stitch; start_encode sends JSON text."""
    fmt = [{"output": "thumbnail"}]
    as_list = parse_query({"source": ["/a.mp4", {"url": "/b.mp4", "start_time": "0.5"}],
                           "format": fmt})  # fmt: skip
    as_text = parse_query({"stitch": json.dumps(["/a.mp4", {"url": "/b.mp4", "start_time": 0.5}]),
                           "format": fmt})  # fmt: skip
    want = (Piece("/a.mp4"), Piece("/b.mp4", 0.5))
    assert as_list.stitch == as_text.stitch == want and as_list.source == ""
    assert Query.from_json(json.loads(json.dumps(as_list.to_json()))) == as_list
    secret = parse_query({"stitch": ["https://user:pw@example.com/a.mp4"], "format": fmt})
    assert "pw" in secret.secrets()
