"""``scenes: 1`` (qthumb's extension on ``thumbnails``): a clip of four shots with known cuts,
each shot grainy (noise moves every frame) and the third in motion; the chapters must start at
the cuts, to the frame, and each shot's thumbnail must come from that shot."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from tests.conftest import API_KEY, QthumbProcess, ffmpeg, serving
from tests.qclient import QClient
from tests.test_thumbnails import parse_cues

RATE = 25
# (lavfi source, frames): cuts at frames 30, 55 and 95
SHOTS = [("color=c=red:", 30), ("color=c=blue:", 25), ("testsrc2=", 40), ("color=c=green:", 35)]
CUTS = [0, 30, 55, 95]


@pytest.fixture(scope="module")
def shots_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("scenes")
    inputs: list[str] = []
    for source, frames in SHOTS:
        inputs += ["-f", "lavfi", "-i", f"{source}s=160x90:r={RATE}:d={frames / RATE}"]
    joined = "".join(f"[{n}]" for n in range(len(SHOTS)))
    ffmpeg(*inputs, "-filter_complex",
           f"{joined}concat=n={len(SHOTS)}:v=1,noise=alls=20:allf=t+u,format=yuv420p",
           "-c:v", "libx264", "-g", "250", str(folder / "shots.mp4"))  # fmt: skip
    return folder / "shots.mp4"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, shots_clip: Path) -> Iterator[QthumbProcess]:
    with serving(tmp_path_factory.mktemp("scenes-server"), shots_clip.parent, workers=1,
                 QTHUMB_LOCAL_SOURCE_DIRS=str(shots_clip.parent)) as running:  # fmt: skip
        yield running


def colour(image: Image.Image) -> str:
    r, g, b = ImageStat.Stat(image.convert("RGB")).mean
    if r > 2 * max(g, b):
        return "red"
    if b > 2 * max(r, g):
        return "blue"
    if g > 2 * max(r, b):
        return "green"
    return "other"


def test_chapters_start_at_the_cuts_and_each_shot_gives_its_frame(
    server: QthumbProcess, shots_clip: Path
):
    with QClient(server.base_url, API_KEY) as client:
        status = client.run({"source": str(shots_clip), "format": [
            {"output": "thumbnails", "scenes": 1, "image_format": "jpg"}]})  # fmt: skip
        assert status["status"] == "completed", status
        by_name = {i["url"].rsplit("/", 1)[1]: i for i in status["images"]}
        chapters = client.fetch(by_name["thumbnails-chapters.vtt"]["url"]).text
        cues = parse_cues(chapters)
        assert [c[2] for c in cues] == [f"Chapter {n}" for n in range(1, 5)]
        # each cut within one frame (a cut's time is its first frame's)
        for cue, cut in zip(cues, CUTS, strict=True):
            assert abs(cue[0] - cut / RATE) < 1 / RATE + 1e-6, (cue, cut)
        assert abs(cues[-1][1] - sum(f for _, f in SHOTS) / RATE) < 0.05
        frames = sorted(name for name in by_name if name.startswith("thumb_"))
        assert len(frames) == 4
        seen = []
        for name in frames:
            image = Image.open(io.BytesIO(client.fetch(by_name[name]["url"]).content))
            seen.append(colour(image))
        assert seen == ["red", "blue", "other", "green"]
        # the series' VTT: a cue a shot, naming its frame
        vtt = parse_cues(client.fetch(by_name["thumbnails.vtt"]["url"]).text)
        assert [c[2] for c in vtt] == frames and [c[0] for c in vtt] == [c[0] for c in cues]


def test_scenes_on_a_sprite_make_a_tile_a_shot(server: QthumbProcess, shots_clip: Path):
    with QClient(server.base_url, API_KEY) as client:
        series = {"output": "thumbnails", "scenes": 1, "sprite": 1, "columns": 4, "width": 40}
        status = client.run({"source": str(shots_clip), "format": [series]})
        assert status["status"] == "completed", status
        by_name = {i["url"].rsplit("/", 1)[1]: i for i in status["images"]}
        sheet = Image.open(io.BytesIO(client.fetch(by_name["sprite.png"]["url"]).content))
        cues = parse_cues(client.fetch(by_name["thumbnails.vtt"]["url"]).text)
    assert [c[3] for c in cues] == [(40 * n, 0, 40, 22) for n in range(4)]
    tiles = [colour(sheet.crop((x, y, x + w, y + h))) for x, y, w, h in (c[3] for c in cues)]  # type: ignore[misc]
    assert tiles == ["red", "blue", "other", "green"]
    assert [round(c[0] * RATE) for c in cues] == CUTS


@pytest.mark.parametrize(("fields", "words"), [
    ({"scenes": 1, "sprite": 1, "image_format": "jpg", "trickplay": ["hls"]},
     "a scene's do not"),
])  # fmt: skip
def test_what_scenes_cannot_do_is_refused(
    server: QthumbProcess, shots_clip: Path, fields: dict[str, object], words: str
):
    with QClient(server.base_url, API_KEY) as client:
        task = client.new_task()
        query = {"source": str(shots_clip), "format": [{"output": "thumbnails", **fields}]}
        reply = client.post("start_encode2", {"task_token": task,
                                              "query": json.dumps({"query": query})})  # fmt: skip
        assert reply["error"] == 1 and words in reply["message"], reply
