"""A real player reads qthumb's sprite and WebVTT: Plyr (from npm, served on loopback) in
headless Chromium (Debian's), driven by Playwright. Hovering the seek bar must show the tile
of the frame at the hovered time."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from PIL import Image, ImageStat
from playwright.sync_api import Page, sync_playwright
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from tests.conftest import ffmpeg, serve_in_thread
from tests.qclient import QClient
from tests.test_thumbnails import of_type, parse_cues, vtt_of

PLAYER_DIR = Path(__file__).parent / "js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip
PAGE = """<!doctype html>
<html><head><meta charset="utf-8">
<link rel="stylesheet" href="/player/node_modules/plyr/dist/plyr.css">
<style>body { margin: 0; width: 800px; }</style></head>
<body>
<video id="v" crossorigin playsinline preload="auto" src="VIDEO"></video>
<script src="/player/node_modules/plyr/dist/plyr.polyfilled.js"></script>
<script>
  const q = new URLSearchParams(location.search);
  document.getElementById("v").src = q.get("video");
  window.player = new Plyr("#v", {
    iconUrl: "/player/node_modules/plyr/dist/plyr.svg",
    controls: ["play", "progress", "current-time"],
    previewThumbnails: {enabled: true, src: q.get("vtt")},
  });
</script></body></html>
"""


@pytest.fixture(scope="module")
def page_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The page, Plyr and the clip over HTTP with Range support (Starlette's StaticFiles)."""
    if not (PLAYER_DIR / "node_modules" / "plyr").is_dir():
        raise RuntimeError("Plyr is missing: `make test` runs npm ci in tests/js")
    site = tmp_path_factory.mktemp("site")
    (site / "index.html").write_text(PAGE)
    # Brightness rises with the frame index, so every 2-second tile has its own grey.
    ffmpeg("-f", "lavfi", "-i", "color=c=black:s=320x180:r=25:d=20,"
           "geq=lum='16+N*0.4':cb=128:cr=128", "-c:v", "libx264", "-pix_fmt", "yuv420p",
           "-g", "25", str(site / "clip.mp4"))  # fmt: skip
    app = Starlette(
        routes=[
            Mount("/player", StaticFiles(directory=PLAYER_DIR)),
            Mount("/", StaticFiles(directory=site)),
        ]
    )
    with serve_in_thread(app) as port:
        yield f"http://127.0.0.1:{port}", site


@pytest.fixture(scope="module")
def browser_page() -> Iterator[Page]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 800, "height": 600})
        yield page
        browser.close()


def test_hovering_the_seek_bar_shows_the_right_tile(
    client: QClient, page_server: tuple[str, Path], browser_page: Page
):
    base, _ = page_server
    status = client.run(
        {
            "source": f"{base}/clip.mp4",
            "format": [
                {
                    "output": "thumbnails",
                    "interval": 2,
                    "sprite": 1,
                    "columns": 4,
                    "width": 160,
                    "image_format": "jpg",
                }
            ],
        }
    )
    vtt_url = next(i["url"] for i in status["images"] if i["type"] == "vtt")
    [sheet] = of_type(status, "sprite")
    sprite = Image.open(io.BytesIO(client.fetch(sheet["url"]).content)).convert("RGB")
    cues = parse_cues(vtt_of(client, status))
    assert len(cues) == 10

    page = browser_page
    page.goto(f"{base}/index.html?" + urlencode({"video": f"{base}/clip.mp4", "vtt": vtt_url}))
    page.wait_for_function("window.player && window.player.duration > 0", timeout=20_000)
    # Plyr ignores the pointer until it has read the VTT (previewThumbnails.loaded): a hover
    # before that shows nothing, and nothing moves the pointer again (seen under load)
    page.wait_for_function(
        "window.player.previewThumbnails && window.player.previewThumbnails.loaded",
        timeout=20_000,
    )
    bar = page.locator(".plyr__progress input[type=range]")
    box = bar.bounding_box()
    assert box is not None
    for k in (0, 3, 7, 9):
        start, end, name, xywh = cues[k]
        assert xywh is not None
        middle = (start + end) / 2
        page.mouse.move(box["x"] + box["width"] * middle / 20.0, box["y"] + box["height"] / 2)
        image = page.locator(f".plyr__preview-thumb__image-container img[data-index='{k}']")
        image.wait_for(state="visible", timeout=10_000)
        page.wait_for_function(
            "i => { const e = document.querySelector("
            "`.plyr__preview-thumb__image-container img[data-index='${i}']`);"
            " return e && e.complete && e.naturalWidth > 0 && e.style.left !== ''; }",
            arg=k,
            timeout=10_000,
        )
        assert image.get_attribute("data-filename") == name == "sprite.jpg"
        style = image.evaluate(
            "e => [parseFloat(e.style.left), parseFloat(e.style.top),"
            " parseFloat(e.style.height), e.naturalHeight]"
        )
        scale = style[2] / style[3]
        assert (-style[0] / scale, -style[1] / scale) == pytest.approx(xywh[:2], abs=0.5)
        # What the person sees is the tile for that time.
        shown = Image.open(
            io.BytesIO(page.locator(".plyr__preview-thumb__image-container").screenshot())
        ).convert("RGB")
        seen = grey(shown)
        greys = [grey(sprite.crop((cx, cy, cx + cw, cy + ch))) for *_, (cx, cy, cw, ch) in cues]
        nearest = min(range(len(cues)), key=lambda i: abs(greys[i] - seen))
        assert nearest == k and abs(greys[k] - seen) < 4, (k, seen, greys)


def grey(image: Image.Image) -> float:
    """Mean brightness of the upper middle, away from Plyr's time label and rounded corners."""
    w, h = image.size
    return float(
        ImageStat.Stat(image.convert("L").crop((w // 4, h // 8, 3 * w // 4, h // 2))).mean[0]
    )
