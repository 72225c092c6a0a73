"""The README and the documentation site (``docs/``, ``mkdocs.yml``): the README is the front
door, the site builds strictly (a broken link or a missing page fails), its settings page
lists every setting, and its shell and Python examples run against a real qthumb: each block
is run by a test here (or by the test named in ``RUN_ELSEWHERE``), or is in ``NOT_RUN`` with
the reason it cannot be (a block that is neither fails the suite)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from PIL import Image

from qthumb.app.settings import Settings
from tests.conftest import QthumbProcess

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def code_blocks(text: str, language: str = "sh") -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def page(name: str) -> str:
    return (DOCS / name).read_text()


def test_first_block_is_the_two_commands():
    assert code_blocks(README.read_text())[0].split("\n")[:2] == ["make run", "make test"]


def test_the_readme_is_the_front_door():
    """About 150 lines at most: the three uses, the two commands, the curl session, the feature
    table and the links into the docs, each of which exists."""
    text = README.read_text()
    assert len(text.splitlines()) <= 150
    for link in re.findall(r"\]\((docs/[^)#]+|bench/[^)#]+)\)", text):
        assert (ROOT / link).exists(), link
    session = code_blocks(text)[1]  # one session, run by test_curl_session_works_as_pasted
    assert session == code_blocks(page("getting-started.md"))[1] == code_blocks(page("index.md"))[1]


def test_the_site_builds_strictly_and_lists_every_setting(tmp_path: Path):
    site = tmp_path / "site"
    done = subprocess.run([str(Path(sys.executable).parent / "mkdocs"), "build", "--strict",
                           "-d", str(site)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    settings = (site / "settings" / "index.html").read_text()
    for name in Settings.model_fields:
        assert f"QTHUMB_{name.upper()}</code>" in settings, name
    # offline: no font, script or style from another host
    home = (site / "index.html").read_text()
    assert "fonts.googleapis" not in home and not re.search(r'<script[^>]+src="https?://', home)
    assert (site / "search" / "search_index.json").exists()
    # the outputs page's pictures, made by qthumb at this build (docs/_hooks/output_pictures.py)
    made = site / "images" / "made"
    sizes = {}
    for picture in made.iterdir():
        with Image.open(picture) as image:
            sizes[picture.name] = image.size
    console = {name: sizes.pop(name) for name in list(sizes) if name.startswith("console-")}
    assert sizes == {"thumbnail.jpg": (320, 180), "crop.jpg": (180, 180), "pad.jpg": (180, 180),
                     "rotate.jpg": (180, 320), "sprite.jpg": (640, 144),
                     "animation.gif": (240, 135)}, sizes  # fmt: skip
    outputs = (site / "outputs" / "index.html").read_text()
    assert all(f'src="../images/made/{name}"' in outputs for name in sizes)
    # the console page's, taken by Chromium from a real qthumb (docs/_hooks/console_pictures.py)
    assert set(console) == {"console-tasks.png", "console-task.png", "console-playground.png"}
    assert all(size == (1000, 760) for size in console.values()), console
    with Image.open(made / "console-task.png") as task:  # the sprite's preview is on it
        assert len(task.convert("RGB").getcolors(1 << 20) or []) > 1000  # a picture, not a page
    page_html = (site / "console" / "index.html").read_text()
    assert all(f'src="../images/made/{name}"' in page_html for name in console)


def test_curl_session_works_as_pasted(tmp_path: Path):
    """Run the block against `qthumb serve` with make run's defaults: dev key, ./media."""
    session = code_blocks(README.read_text())[1]
    data = tmp_path / "qthumb-data"
    data.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QTHUMB_")} | {
        "QTHUMB_DATA_DIR": str(data),
        "QTHUMB_LOCAL_SOURCE_DIRS": str(tmp_path / "media"),
    }
    server = QthumbProcess(data, env)
    try:
        server.serve(workers=1)
        script = session.replace("127.0.0.1:8000", f"127.0.0.1:{server.port}")
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        assert result.returncode == 0, result.stderr + server.logs()
        assert '"status": "completed"' in result.stdout
        with Image.open(tmp_path / "thumbnail.png") as image:
            assert image.size == (320, 180)
    finally:
        server.stop()


def test_error_handling_examples_work_as_pasted(tmp_path: Path):
    """The "Testing your error handling" block, against `qthumb serve` with control on: every
    rule is accepted, listed, cleared, and the reset answers."""
    [block] = [b for b in code_blocks(page("testing.md")) if "$Q/faults" in b]
    data = tmp_path / "data"
    data.mkdir()
    key = "readme-key-0123456789"
    env = {k: v for k, v in os.environ.items() if not k.startswith("QTHUMB_")} | {
        "QTHUMB_DATA_DIR": str(data), "QTHUMB_API_KEYS": key, "QTHUMB_CONTROL": "1"}  # fmt: skip
    server = QthumbProcess(data, env)
    try:
        server.listen("api")
        script = block.replace("KEY=your-api-key", f"KEY={key}").replace(
            "127.0.0.1:8000", f"127.0.0.1:{server.port}"
        )
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True,
                                text=True, timeout=120, stdin=subprocess.DEVNULL)  # fmt: skip
        assert result.returncode == 0, result.stderr + server.logs()
        answers = [line for line in result.stdout.replace("}{", "}\n{").splitlines() if line]
        assert len(answers) == 13 and all('"error":0' in a for a in answers), result.stdout
        assert answers[10].count('"fired":0') == 10  # the listing: every rule, none fired
        assert '"removed":10' in answers[11] and '"tasks":0' in answers[12]
    finally:
        server.stop()


# Every shell and Python block of the docs, by page and its place among that page's blocks of
# its language: run by a test in this file, run elsewhere, or not run and why.
RUN_HERE = {
    ("getting-started.md", "sh", 1): "test_curl_session_works_as_pasted (the README's block)",
    ("index.md", "sh", 1): "test_curl_session_works_as_pasted (the README's block)",
    ("testing.md", "sh", 1): "test_error_handling_examples_work_as_pasted",
    ("offline.md", "sh", 0): "test_the_offline_commands_work_as_pasted",
    ("console.md", "sh", 0): "test_the_url_examples_work_as_pasted",
    ("console.md", "sh", 1): "test_the_url_examples_work_as_pasted",
    ("compatibility.md", "python", 0): "test_the_python_sdk_example_works_as_pasted",
}
RUN_ELSEWHERE = {
    ("testing.md", "python", 0): "tests/test_pytest_plugin.py runs the fixture as a user's suite",
    (
        "testing.md",
        "python",
        1,
    ): "tests/test_pytest_plugin.py::test_the_context_manager_with_the_node_sdk",
    ("testing.md", "python", 2): "tests/test_control.py drives the same rules through the fixture",
    ("testing.md", "python", 3): "tests/test_journal.py asserts so through the Python SDK",
    ("testing.md", "python", 4): "tests/test_pytest_plugin.py runs it as a user's suite, twice",
    ("testing.md", "sh", 2): "tests/test_state.py::test_the_docs_curl_session_works_as_pasted",
    ("testing.md", "python", 5): "tests/test_containers.py::"
    "test_the_testcontainers_module_runs_a_task makes the same calls on the image it builds",
    ("deployment.md", "sh", 1): "tests/test_containers.py builds the image and runs it so (podman)",
}
NOT_RUN = {
    ("getting-started.md", "sh", 0): "make run / make test: the commands that run this suite",
    ("index.md", "sh", 0): "make run / make test: the commands that run this suite",
    ("testing.md", "sh", 0): "pip install from your clone's URL; tests/test_packaging.py installs "
    "the same requirement strings from the wheel",
    ("destinations.md", "sh", 0): "make run with an environment: a server that runs until stopped",
    ("deployment.md", "sh", 0): "machines of your own (10.0.0.5); tests/test_distributed.py runs "
    "the same settings on loopback",
}


def test_every_example_is_run_or_says_why_not():
    pages = [p.name for p in DOCS.glob("*.md")]
    found = {(name, language, n) for name in pages for language in ("sh", "python")
             for n, _ in enumerate(code_blocks(page(name), language))}  # fmt: skip
    known = RUN_HERE.keys() | RUN_ELSEWHERE.keys() | NOT_RUN.keys()
    assert found == set(known), (found - known, known - found)


def served(tmp_path: Path, **extra: str) -> QthumbProcess:
    data = tmp_path / "qthumb-data"
    data.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QTHUMB_")} | {
        "QTHUMB_DATA_DIR": str(data), "QTHUMB_LOCAL_SOURCE_DIRS": str(tmp_path),
        "QTHUMB_CONTROL": "1", **extra}  # fmt: skip
    server = QthumbProcess(data, env)
    server.serve(workers=1)
    return server


def bash(script: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, text=True,
                          capture_output=True, timeout=180, stdin=subprocess.DEVNULL,
                          env={**os.environ, **env})  # fmt: skip


def test_the_offline_commands_work_as_pasted(tmp_path: Path):
    """Each command of the offline page, in a folder holding what they name."""
    from tests.conftest import ffmpeg

    (tmp_path / "videos").mkdir()
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=20", "-pix_fmt", "yuv420p",
           str(tmp_path / "clip.mp4"))  # fmt: skip
    (tmp_path / "videos" / "a.mp4").write_bytes((tmp_path / "clip.mp4").read_bytes())
    (tmp_path / "query.json").write_text(json.dumps({"query": {"source": str(tmp_path / "clip.mp4"),
                                         "format": [{"output": "thumbnail"}]}}))  # fmt: skip
    [block] = code_blocks(page("offline.md"))
    venv = str(Path(sys.executable).parent)
    done = bash(block, tmp_path, PATH=f"{venv}:{os.environ['PATH']}")
    assert done.returncode == 0, done.stderr[-3000:]
    for made in ("poster.jpg", "posters/a.jpg", "square.jpg", "results"):
        assert (tmp_path / made).exists(), made
    assert list((tmp_path / "previews").rglob("*.vtt"))


def test_the_url_examples_work_as_pasted(tmp_path: Path):
    """The frame, storyboard and animation URLs of the console page, for a started task."""
    from tests.conftest import API_KEY, ffmpeg
    from tests.qclient import QClient

    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=20", "-pix_fmt", "yuv420p",
           str(tmp_path / "clip.mp4"))  # fmt: skip
    server = served(tmp_path, QTHUMB_API_KEYS=API_KEY)
    try:
        with QClient(server.base_url, API_KEY) as client:
            task = client.start({"source": str(tmp_path / "clip.mp4"), "format": [
                {"output": "thumbnail"}]})  # fmt: skip
            client.wait(task)
        for block in code_blocks(page("console.md")):
            script = block.replace("127.0.0.1:8000", f"127.0.0.1:{server.port}")
            done = bash(script.replace("curl ", "curl -sf "), tmp_path, TASK=task)
            assert done.returncode == 0, done.stderr[-3000:] + server.logs()
        for made, magic in (("frame.jpg", b"\xff\xd8"), ("mid.webp", b"RIFF"),
                            ("sheet.jpg", b"\xff\xd8"), ("clip.gif", b"GIF8"),
                            ("thumbs.m3u8", b"#EXT"), ("thumbs.mpd", b"<?xm")):  # fmt: skip
            assert (tmp_path / made).read_bytes()[:4].startswith(magic), made
    finally:
        server.stop()


def test_the_python_sdk_example_works_as_pasted(tmp_path: Path):
    """The qencode3 example, its source a local clip instead of example.com's."""
    from tests.conftest import API_KEY, ffmpeg

    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=4", "-pix_fmt", "yuv420p",
           str(tmp_path / "v.mp4"))  # fmt: skip
    server = served(tmp_path, QTHUMB_API_KEYS=API_KEY)
    try:
        [block] = code_blocks(page("compatibility.md"), "python")
        block = block.replace("127.0.0.1:8000", f"127.0.0.1:{server.port}")
        script = f"API_KEY = {API_KEY!r}\n" + block.replace(
            "https://example.com/v.mp4", str(tmp_path / "v.mp4")
        )
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        assert "'status':" in done.stdout and "'error': 0" in done.stdout, done.stdout
    finally:
        server.stop()


def test_the_api_docs_pages_work_with_no_internet(tmp_path: Path):
    """/docs (Swagger UI) and /redoc (ReDoc) render in Chromium with every request to another
    host refused: their scripts, styles and icon are served by qthumb itself."""
    from playwright.sync_api import Route, sync_playwright

    from tests.test_player import CHROMIUM, CHROMIUM_ARGS

    server = served(tmp_path)
    refused: list[str] = []

    def only_loopback(route: Route) -> None:
        if route.request.url.startswith(f"http://127.0.0.1:{server.port}/"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.route("**/*", only_loopback)
                page.goto(f"{server.base_url}/docs")
                page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
                assert "qthumb" in page.inner_text(".swagger-ui .info .title")
                page.wait_for_selector(".opblock-summary-path", timeout=30_000)
                assert "/v1/start_encode2" in page.inner_text("body")
                page.goto(f"{server.base_url}/redoc")
                page.wait_for_selector("h1", timeout=30_000)
                assert "qthumb" in page.inner_text("h1")
                page.wait_for_selector("h2", timeout=30_000)  # an operation's heading
                assert "start encode2" in page.inner_text("body").lower()
            finally:
                browser.close()
    finally:
        server.stop()
    assert refused == []
