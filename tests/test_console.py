"""The web console (``/ui/``) in Debian's headless Chromium (Playwright): sign in, run a
playground query, watch its task page complete, hover the player's seek bar and see the right
sprite tile (by position and by pixels), open a thumbnail on demand; screenshots of each page
go to ``test-artifacts/console`` (not committed). Over plain HTTP: nothing of the console
without a session, one key's tasks invisible to another, HTML in user input escaped, CSRF."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageStat
from playwright.sync_api import Page, sync_playwright

from tests.conftest import API_KEY, OTHER_KEY, QthumbProcess, ffmpeg, serving
from tests.qclient import QClient
from tests.test_player import CHROMIUM, CHROMIUM_ARGS

ARTIFACTS = Path(os.environ.get("QTHUMB_TEST_ARTIFACTS", "test-artifacts")) / "console"


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, clips: Path) -> Iterator[QthumbProcess]:
    media = tmp_path_factory.mktemp("media")
    # Brightness rises with the frame index, so every 2-second tile has its own grey.
    ffmpeg("-f", "lavfi", "-i", "color=c=black:s=320x180:r=25:d=20,"
           "geq=lum='16+N*0.4':cb=128:cr=128", "-c:v", "libx264", "-pix_fmt", "yuv420p",
           "-g", "25", str(media / "greys.mp4"))  # fmt: skip
    with serving(tmp_path_factory.mktemp("console"), clips, QTHUMB_LOCAL_SOURCE_DIRS=str(media),
                 QTHUMB_API_KEYS=f"{API_KEY},{OTHER_KEY}") as server:  # fmt: skip
        yield server


def sign_in(client: httpx.Client, key: str) -> httpx.Response:
    """The sign-in form's page first (its CSRF token and cookie), then the form."""
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get("/ui/signin").text)
    assert found
    return client.post("/ui/signin", data={"api_key": key, "csrf": found.group(1)})


@contextmanager
def signed_in(base: str, key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=30, headers={"Accept": "text/html"}) as client:
        answer = sign_in(client, key)
        assert answer.status_code == 303 and "qthumb_console" in client.cookies
        yield client


def csrf_of(client: httpx.Client) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get("/ui/playground").text)
    assert found
    return found.group(1)


def test_nothing_of_the_console_without_a_session(console: QthumbProcess):
    with QClient(console.base_url, API_KEY) as c:
        task = c.start({"source": "http://127.0.0.1:9/x.mp4", "format": [{"output": "thumbnail"}]})
    gets = ["/ui/", "/ui/rows", f"/ui/tasks/{task}", f"/ui/tasks/{task}/state",
            f"/ui/tasks/{task}/source", "/ui/playground"]  # fmt: skip
    posts = ["/ui/playground", "/ui/playground/preview", "/ui/playground/task", "/ui/signout"]
    for cookie in ({}, {"qthumb_console": "0" * 32}, {"qthumb_console": "<script>"}):
        with httpx.Client(base_url=console.base_url, cookies=cookie, timeout=30) as anon:
            for path in gets:
                page = anon.get(path, headers={"Accept": "text/html"})
                assert page.status_code == 303 and page.headers["location"] == "/ui/signin", path
                assert anon.get(path, headers={"Accept": "application/json"}).status_code == 401
            for path in posts:
                assert anon.post(path, data={"query": "{}"}).status_code == 401, path
    assert httpx.get(f"{console.base_url}/ui/signin").status_code == 200
    assert httpx.get(f"{console.base_url}/", follow_redirects=False).headers["location"] == "/ui/"


def test_the_session_cookie_and_csrf(console: QthumbProcess):
    with httpx.Client(base_url=console.base_url, timeout=30) as c:
        answer = sign_in(c, API_KEY)
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "max-age=86400" in cookie
        bad = sign_in(c, "wrong-key-0123456789")
        assert bad.status_code == 401 and "not found" in bad.text.lower()
    with signed_in(console.base_url, API_KEY) as c:
        forged = c.post("/ui/playground", data={"csrf": "0" * 64, "query": "{}"})
        assert forged.status_code == 403
        assert c.post("/ui/signout", data={"csrf": "x"}).status_code == 403
        assert c.post("/ui/signout", data={"csrf": csrf_of(c)}).status_code == 303
        assert c.get("/ui/").status_code == 303  # the session ended with the sign-out


def test_one_keys_tasks_are_invisible_to_another(console: QthumbProcess):
    with QClient(console.base_url, API_KEY) as c:
        mine = c.start({"source": "http://127.0.0.1:9/mine.mp4",
                        "format": [{"output": "thumbnail"}],
                        "callback_url": "http://127.0.0.1:9/hook"})  # fmt: skip
        c.wait(mine)
    with signed_in(console.base_url, OTHER_KEY) as other:
        assert mine not in other.get("/ui/").text
        assert mine not in other.get("/ui/rows?status=error").text
        for path in (f"/ui/tasks/{mine}", f"/ui/tasks/{mine}/state", f"/ui/tasks/{mine}/source"):
            assert other.get(path).status_code == 404, path
        assert "mine.mp4" not in other.get(f"/ui/tasks/{mine}").text
    with signed_in(console.base_url, API_KEY) as owner:
        assert mine[:8] in owner.get("/ui/").text
        page = owner.get(f"/ui/tasks/{mine}")
        assert page.status_code == 200 and "mine.mp4" in page.text


def test_html_in_user_input_is_escaped(console: QthumbProcess):
    evil = '<script>alert("x")</script>'
    with QClient(console.base_url, API_KEY) as c:
        task = c.start({"source": 'http://127.0.0.1:9/"><img src=x onerror=alert(1)>.mp4',
                        "format": [{"output": "thumbnail", "user_tag": evil}]},
                       payload=f"<b>{evil}</b>")  # fmt: skip
        c.wait(task)
    with signed_in(console.base_url, API_KEY) as c:
        for path in ("/ui/", f"/ui/tasks/{task}", "/ui/rows"):
            text = c.get(path).text
            assert "<script>alert" not in text and "<img src=x" not in text, path
        page = c.get(f"/ui/tasks/{task}").text
        assert "&lt;img src=x onerror=alert(1)&gt;" in page and "&lt;script&gt;" in page
        assert (
            c.get(f"/ui/tasks/{task}")
            .headers["content-security-policy"]
            .startswith("default-src 'self'")
        )


@pytest.fixture(scope="module")
def browser() -> Iterator[Page]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium.new_page(viewport={"width": 900, "height": 900})
        chromium.close()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def grey(image: Image.Image) -> float:
    return float(ImageStat.Stat(image.convert("L")).mean[0])


def test_a_playground_run_seen_in_the_browser(console: QthumbProcess, browser: Page):
    base, page = console.base_url, browser
    page.goto(f"{base}/ui/")
    assert page.url.endswith("/ui/signin")
    shot(page, "1-signin")
    page.get_by_label("API key").fill(API_KEY)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/ui/")
    page.get_by_role("link", name="Playground", exact=True).click()
    page.get_by_label("interval (s)").fill("2")
    page.get_by_label("columns").fill("4")
    page.wait_for_function(
        "() => document.getElementById('query').value.includes('\"interval\": 2')"
    )
    page.wait_for_function(
        "() => document.getElementById('curl').textContent.includes('\"interval\":2')"
    )
    shot(page, "2-playground")
    page.get_by_role("button", name="Run").click()
    page.wait_for_url(re.compile(r".*/ui/tasks/[0-9a-f]{32}$"))
    token = page.url.rsplit("/", 1)[1]
    page.wait_for_selector("#task-state[data-status=completed]", timeout=60_000)
    page.wait_for_function("() => document.querySelector('.player').dataset.cues === '10'",
                           timeout=20_000)  # fmt: skip
    assert page.locator(".sheet .cue").count() == 10
    shot(page, "3-task")

    with QClient(base, API_KEY) as c:
        status = c.status(token)
        sheet = next(i for i in status["images"] if i["type"] == "sprite")
        sprite = Image.open(io.BytesIO(c.fetch(sheet["url"]).content)).convert("RGB")
    bar = page.locator(".seek")
    box = bar.bounding_box()
    assert box is not None
    for k in (0, 3, 6, 9):
        t = 2 * k + 1  # the middle of cue k
        page.mouse.move(box["x"] + box["width"] * t / 20, box["y"] + box["height"] / 2)
        preview = page.locator(".preview")
        preview.wait_for(state="visible")
        x, y = (k % 4) * 160, (k // 4) * 90
        assert preview.get_attribute("data-cue") == f"{sheet['url']}#xywh={x},{y},160,90"
        shown = Image.open(io.BytesIO(page.locator(".preview-image").screenshot()))
        tile = sprite.crop((x, y, x + 160, y + 90))
        assert abs(grey(shown) - grey(tile)) < 4, (k, grey(shown), grey(tile))
    shot(page, "4-seek-preview")

    page.goto(f"{base}/v1/thumbnail.jpg?task_token={token}&time=10&width=320")
    shot(page, "5-on-demand")
    image = page.locator("img")
    assert image.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [320, 180]
    page.goto(f"{base}/ui/")
    assert page.locator(f"a[href='/ui/tasks/{token}']").count() == 1
    shot(page, "6-tasks")
    page.set_viewport_size({"width": 375, "height": 800})  # a phone
    page.goto(f"{base}/ui/tasks/{token}")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375 + 1, width  # nothing wider than the screen
    shot(page, "7-task-phone")


def test_a_task_without_a_sprite_previews_its_storyboard_by_url(
    console: QthumbProcess, browser: Page
):
    """The player's seek bar previews a task that made one poster: from the storyboard the
    frame server makes on the first hover (``/v1/storyboard.vtt``), tile by tile."""
    base, page = console.base_url, browser
    with QClient(base, API_KEY) as c:
        greys = str(Path(console.env["QTHUMB_LOCAL_SOURCE_DIRS"]) / "greys.mp4")
        token = c.start({"source": greys, "format": [{"output": "thumbnail"}]})
        assert c.wait(token)["status"] == "completed"
    page.goto(f"{base}/ui/signin")
    if page.url.endswith("/ui/signin"):
        page.get_by_label("API key").fill(API_KEY)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{base}/ui/")
    page.goto(f"{base}/ui/tasks/{token}")
    vtt = page.locator(".player").get_attribute("data-vtt")
    assert vtt == f"/v1/storyboard.vtt?task_token={token}&width=160"
    # 20 s: a tile every 0.5 s (the nicest interval under 100 tiles), 160 px wide
    page.wait_for_function("() => document.querySelector('.player').dataset.cues === '40'",
                           timeout=30_000)  # fmt: skip
    bar = page.locator(".seek")
    box = bar.bounding_box()
    assert box is not None
    sheets: dict[str, Image.Image] = {}
    for t in (1.25, 7.75, 16.25):
        page.mouse.move(box["x"] + box["width"] * t / 20, box["y"] + box["height"] / 2)
        preview = page.locator(".preview")
        preview.wait_for(state="visible")
        cue = preview.get_attribute("data-cue") or ""
        url, xywh = cue.split("#xywh=")
        assert url.startswith(f"{base}/v1/storyboard.jpg?task_token={token}&")
        if url not in sheets:
            sheets[url] = Image.open(io.BytesIO(httpx.get(url, timeout=30).content))
        x, y, w, h = (int(v) for v in xywh.split(","))
        assert (w, h) == (160, 90)
        k = int(t / 0.5)  # the cue under the pointer: its tile shows frame 12.5k
        assert (x, y) == ((k % 10) * 160, (k // 10) * 90), (t, x, y)
        shown = Image.open(io.BytesIO(page.locator(".preview-image").screenshot()))
        tile = sheets[url].crop((x, y, x + w, y + h))
        assert abs(grey(shown) - grey(tile)) < 4, (t, grey(shown), grey(tile))
        # the clip's luma is 16 + 0.4 N in limited range: 0.4 N * 255 / 219 in full
        assert abs(grey(tile) - 0.4 * int(k * 12.5) * 255 / 219) < 6, (t, grey(tile))
    shot(page, "8-storyboard-preview")


def test_a_task_page_offers_the_previews_to_other_players(console: QthumbProcess):
    """Links to the same previews as HLS, DASH and BIF (``/v1/trickplay.*``), each served."""
    greys = str(Path(console.env["QTHUMB_LOCAL_SOURCE_DIRS"]) / "greys.mp4")
    with QClient(console.base_url, API_KEY) as c:
        task = c.start({"source": greys, "format": [{"output": "thumbnail"}]})
        c.wait(task)
    with signed_in(console.base_url, API_KEY) as c:
        page = c.get(f"/ui/tasks/{task}").text
        links = re.findall(r'href="(/v1/trickplay\.[a-z0-9]+\?[^"]+)"', page)
        assert len(links) == 4, links
        types = set()
        for link in links:
            answer = c.get(link.replace("&amp;", "&"))
            assert answer.status_code == 200, (link, answer.text[:300])
            types.add(answer.headers["content-type"].split(";")[0])
    assert types == {"application/vnd.apple.mpegurl", "application/dash+xml",
                     "application/octet-stream"}  # fmt: skip


def test_a_playground_upload_goes_over_tus(console: QthumbProcess, browser: Page):
    """The file goes to the task's upload URL as the SDKs send it; the query names tus:."""
    base, page = console.base_url, browser
    page.set_viewport_size({"width": 900, "height": 900})
    page.goto(f"{base}/ui/playground")
    if page.url.endswith("/ui/signin"):
        page.get_by_label("API key").fill(API_KEY)
        page.get_by_role("button", name="Sign in").click()
        page.goto(f"{base}/ui/playground")
    page.get_by_label("Upload a file (tus, as the SDKs do)").check()
    page.set_input_files(
        "#upload", str(Path(console.env["QTHUMB_LOCAL_SOURCE_DIRS"]) / "greys.mp4")
    )
    page.get_by_label("thumbnail: one image").uncheck()
    page.get_by_role("button", name="Run").click()
    page.wait_for_url(re.compile(r".*/ui/tasks/[0-9a-f]{32}$"), timeout=60_000)
    page.wait_for_selector("#task-state[data-status=completed]", timeout=60_000)
    assert page.locator(".summary .source").inner_text().startswith("tus:")
    assert page.locator(".sheet .cue").count() == 20  # every second of 20 s
    shot(page, "8-uploaded")
