"""A real player reads qthumb's HLS and DASH image tracks: Shaka Player (from npm, pinned,
served on loopback) in headless Chromium (Debian's). ffmpeg's own HLS and DASH muxers make a
presentation of the barcode clip; the test adds qthumb's image track to each manifest as a
user would (the ``EXT-X-IMAGE-STREAM-INF`` line, the ``AdaptationSet``); for several times,
``getThumbnails`` must name the sheet and the tile whose pixels are the frame shown then."""

from __future__ import annotations

import io
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.sync_api import sync_playwright
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from tests.conftest import API_KEY, ffmpeg, serve_in_thread
from tests.qclient import QClient
from tests.test_player import CHROMIUM, CHROMIUM_ARGS, PLAYER_DIR
from tests.test_thumbnail import barcode_index
from tests.test_trickplay import (  # noqa: F401  (server: a fixture)
    INTERVAL,
    TIMES,
    files_of,
    server,
    shown_frame,
)

NS = "{urn:mpeg:dash:schema:mpd:2011}"


def started(running: Any, clips: Path) -> str:
    """A task of the barcode clip that made nothing but its metadata: a source to read."""
    with QClient(running.base_url, API_KEY) as client:
        client.run({"source": str(clips / "barcode.mp4"), "format": [{"output": "metadata"}]})
        return str(client.last_token)


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"></head><body><video id="v" muted></video>
<script src="/player/node_modules/shaka-player/dist/shaka-player.compiled.js"></script>
<script>
  window.thumbnails = async (manifest, times) => {
    shaka.polyfill.installAll();
    const player = new shaka.Player();
    await player.attach(document.getElementById("v"));
    try {
      await player.load(manifest);
    } catch (e) {
      return {error: [e.code, JSON.stringify(e.data)]};  // shaka.util.Error: code and data
    }
    const tracks = player.getImageTracks();
    const found = [];
    for (const t of times) found.push(await player.getThumbnails(tracks[0].id, t));
    await player.destroy();
    return {tracks, found};
  };
</script></body></html>
"""


@pytest.fixture(scope="module")
def presentations(
    tmp_path_factory: pytest.TempPathFactory,
    server: Any,  # noqa: F811
    clips: Path,
) -> Iterator[str]:
    """An HLS and a DASH presentation of the barcode clip, each with qthumb's image track."""
    if not (PLAYER_DIR / "node_modules" / "shaka-player").is_dir():
        raise RuntimeError("Shaka Player is missing: `make test` runs npm ci in tests/js")
    site = tmp_path_factory.mktemp("presentations")
    (site / "index.html").write_text(PAGE)
    app = Starlette(routes=[Mount("/player", StaticFiles(directory=PLAYER_DIR)),
                            Mount("/", StaticFiles(directory=site))])  # fmt: skip
    with serve_in_thread(app) as port:
        build(site, f"http://127.0.0.1:{port}", server, clips)
        yield f"http://127.0.0.1:{port}"
    shutil.rmtree(site, ignore_errors=True)


def build(site: Path, url: str, server: Any, clips: Path) -> None:  # noqa: F811
    """The presentations under ``site`` (served at ``url``)."""
    made = files_of(server, clips)
    hls, dash = site / "hls", site / "dash"
    for folder in (hls, dash):
        folder.mkdir()
        for name in ("sprite_01.jpg", "sprite_02.jpg"):
            (folder / name).write_bytes(made[name])
    source = str(clips / "barcode.mp4")
    ffmpeg("-i", source, "-c:v", "libx264", "-profile:v", "high", "-level", "3.0",
           "-pix_fmt", "yuv420p", "-g", "25", "-f", "hls", "-hls_time", "1",
           "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4",
           str(hls / "video.m3u8"))  # fmt: skip
    (hls / "thumbnails.m3u8").write_bytes(made["thumbnails.m3u8"])
    stream = made["thumbnails-image-stream.m3u8"].decode().splitlines()[-1]
    # ffmpeg writes no multivariant playlist for one stream: this is the user's own
    (hls / "master.m3u8").write_text(
        "#EXTM3U\n#EXT-X-VERSION:7\n"
        '#EXT-X-STREAM-INF:BANDWIDTH=100000,RESOLUTION=64x48,CODECS="avc1.64001e"\n'
        f"video.m3u8\n{stream}\n"
    )
    ffmpeg("-i", source, "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "25", "-f", "dash",
           str(dash / "manifest.mpd"))  # fmt: skip
    own_mpd = (dash / "manifest.mpd").read_text()
    adaptation = made["thumbnails-image-adaptation-set.xml"].decode()
    (dash / "manifest.mpd").write_text(own_mpd.replace("</Period>", adaptation + "</Period>", 1))
    # the same by URL, from any started task: qthumb's own playlist and AdaptationSet, naming
    # the sheets of /v1/storyboard.jpg by absolute URL (another origin: CORS)
    query = f"task_token={started(server, clips)}&width=64&columns=3&interval={INTERVAL}"
    for folder in ("hls", "dash"):
        shutil.copytree(site / folder, site / f"{folder}-by-url", ignore=shutil.ignore_patterns(
            "thumbnails*", "sprite_*"))  # fmt: skip
    by_url = httpx.get(f"{server.base_url}/v1/trickplay.m3u8?{query}&multivariant=1", timeout=60)
    assert by_url.status_code == 200, by_url.text
    line = by_url.text.splitlines()[-1]
    assert line.startswith("#EXT-X-IMAGE-STREAM-INF:") and server.base_url in line
    master = (site / "hls" / "master.m3u8").read_text().splitlines()[:-1]
    (site / "hls-by-url" / "master.m3u8").write_text("\n".join([*master, line]) + "\n")
    mpd = httpx.get(f"{server.base_url}/v1/trickplay.mpd?{query}", timeout=60)
    assert mpd.status_code == 200 and mpd.headers["content-type"].startswith("application/dash")
    adaptation = ET.tostring(ET.fromstring(mpd.text).find(f"{NS}Period/{NS}AdaptationSet"),
                             encoding="unicode").replace("ns0:", "").replace(
                                 ' xmlns:ns0="urn:mpeg:dash:schema:mpd:2011"', "")  # fmt: skip
    own = (dash / "manifest.mpd").read_text().split('<AdaptationSet id="100"')[0]
    (site / "dash-by-url" / "manifest.mpd").write_text(own + adaptation + "</Period>\n</MPD>\n")
    # the user's own multivariant playlist extended by qthumb itself (``manifest``): its URIs
    # made absolute, so the copy plays from beside qthumb's files
    own = "\n".join((hls / "master.m3u8").read_text().splitlines()[:-1]) + "\n"
    (hls / "own.m3u8").write_text(own)
    extended = files_of(server, clips, manifest=f"{url}/hls/own.m3u8")
    (site / "hls-extended").mkdir()
    for name in ("sprite_01.jpg", "sprite_02.jpg", "thumbnails.m3u8", "thumbnails-manifest.m3u8"):
        (site / "hls-extended" / name).write_bytes(extended[name])
    assert f"{url}/hls/video.m3u8" in extended["thumbnails-manifest.m3u8"].decode()
    # and the user's own MPD: its AdaptationSet given its location (BaseURL), qthumb's added
    (dash / "own.mpd").write_text(own_mpd)
    extended = files_of(server, clips, manifest=f"{url}/dash/own.mpd")
    (site / "dash-extended").mkdir()
    for name in ("sprite_01.jpg", "sprite_02.jpg", "thumbnails-manifest.mpd"):
        (site / "dash-extended" / name).write_bytes(extended[name])
    assert f"<BaseURL>{url}/dash/</BaseURL>" in extended["thumbnails-manifest.mpd"].decode()


@pytest.mark.parametrize(
    "manifest",
    [
        "hls/master.m3u8",
        "dash/manifest.mpd",
        "hls-extended/thumbnails-manifest.m3u8",
        "dash-extended/thumbnails-manifest.mpd",
        "hls-by-url/master.m3u8",
        "dash-by-url/manifest.mpd",
    ],
)
def test_shaka_player_finds_the_frame_at_each_time(presentations: str, manifest: str):
    base = presentations
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{base}/index.html")
            result = page.evaluate("([m, t]) => window.thumbnails(m, t)",
                                   [f"{base}/{manifest}", TIMES])  # fmt: skip
        finally:
            browser.close()
    assert "error" not in result, result  # codes: shaka.util.Error
    assert len(result["tracks"]) == 1, result["tracks"]
    sheets: dict[str, Image.Image] = {}
    for t, thumb in zip(TIMES, result["found"], strict=True):
        assert thumb is not None, t
        url = thumb["uris"][0]
        if url not in sheets:
            sheets[url] = Image.open(io.BytesIO(httpx.get(url).content)).convert("RGB")
        x, y = round(thumb["positionX"]), round(thumb["positionY"])
        tile = sheets[url].crop((x, y, x + round(thumb["width"]), y + round(thumb["height"])))
        assert tile.size == (64, 48), thumb
        assert barcode_index(tile) == shown_frame(t), (t, thumb)
