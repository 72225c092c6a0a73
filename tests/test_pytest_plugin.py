"""qthumb inside other people's test suites (a team's whole project from a fresh venv is
tests/test_packaging.py): ``qthumb_server()`` for scripts with the Node
SDK, an external qthumb named in the ini file, and nothing left behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from qthumb.app.testing import qthumb_server
from tests.conftest import ffmpeg
from tests.waiting import eventually

JS_DIR = Path(__file__).parent / "js"


def leftovers(tmp: Path) -> list[str]:
    """qthumb processes and data dirs that a fixture made in ``tmp`` (the nested session's
    TMPDIR: other tests running at once make their own elsewhere) and should have removed."""
    found = [p.name for p in tmp.glob("qthumb-test-*")]
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    found += [line for line in ps.splitlines() if f"{tmp}/qthumb-test-" in line]
    return found


def ctrl_c_works() -> None:
    """In the child: SIGINT as a terminal gives it (a runner started in the background, as
    `make test &` is, passes SIGINT on ignored, and Python then keeps ignoring it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_an_interrupted_session_leaves_nothing(pytester: pytest.Pytester):
    tmp = pytester.path / "tmp"
    tmp.mkdir()
    assert leftovers(tmp) == []
    pytester.makepyfile(
        test_slow="""
        import time
        def test_waits(qthumb):
            print("READY", qthumb.url, flush=True)
            time.sleep(60)
    """
    )
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-s", "-p", "no:cacheprovider"],
                            cwd=pytester.path, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(tmp)},
                            start_new_session=True, preexec_fn=ctrl_c_works)  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        if "READY" in line:  # after the file name pytest -s writes first
            break
    os.kill(proc.pid, signal.SIGINT)  # Ctrl-C
    out, _ = proc.communicate(timeout=60)
    assert "KeyboardInterrupt" in out and "1 passed" not in out
    eventually(lambda: leftovers(tmp) == [], 20, lambda: f"left over: {leftovers(tmp)}")


def test_an_external_qthumb_from_the_ini_file(pytester: pytest.Pytester):
    with qthumb_server(workers=1) as running:
        pytester.makeini(f"[pytest]\nqthumb_url = {running.url}\n"
                         f"qthumb_api_key = {running.api_key}\n")  # fmt: skip
        pytester.makepyfile(
            test_external=f"""
            def test_uses_it(qthumb):
                assert qthumb.url == {running.url!r} and qthumb.data_dir is None
        """
        )
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
        result.assert_outcomes(passed=1)


def test_the_context_manager_with_the_node_sdk(tmp_path: Path):
    with qthumb_server(workers=1) as q:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", q.url)
        clip = q.media_dir / "clip.mp4"
        ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=4", "-pix_fmt", "yuv420p",
               str(clip))  # fmt: skip
        query = {"source": str(clip), "format": [  # the Node SDK wraps it in {"query": …}
            {"output": "thumbnails", "interval": 1, "sprite": 1, "width": 80}]}  # fmt: skip
        out = subprocess.run(["node", str(JS_DIR / "sdk-run.js"), q.url, q.api_key,
                              json.dumps(query)], capture_output=True, text=True, timeout=120,
                             cwd=JS_DIR, stdin=subprocess.DEVNULL)  # fmt: skip
        assert out.returncode == 0, out.stderr
        status = json.loads(out.stdout)["status"]
        assert status["status"] == "completed"
        assert q.storage_path is not None
        stored = sorted(p.name for p in q.storage_path.rglob("*") if p.is_file())
        assert stored == ["sprite.png", "thumbnails.vtt"]
        data_dir = q.data_dir
    assert data_dir is not None and not data_dir.exists()


def test_a_seeded_suite_sees_the_same_tokens_every_run(pytester: pytest.Pytester):
    """docs/testing.md's golden-file example, as pasted, in a user's suite: the first run
    writes the token, the second (a fresh server) answers the same, another seed does not."""
    docs = (Path(__file__).parent.parent / "docs" / "testing.md").read_text()
    example = next(b for b in re.findall(r"```python\n(.*?)```", docs, flags=re.S)
                   if "qthumb_seed" in b)  # fmt: skip
    pytester.makepyfile(test_golden=example)

    def run(seed: str) -> subprocess.CompletedProcess[str]:
        pytester.makeini(f"[pytest]\nqthumb_seed = {seed}\n")
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                              cwd=pytester.path, capture_output=True, text=True,
                              timeout=120)  # fmt: skip

    first = run("my-golden-files")
    assert first.returncode == 0, first.stdout[-3000:]
    assert len((pytester.path / "golden-task-token.txt").read_text()) == 32
    again = run("my-golden-files")
    assert again.returncode == 0, again.stdout[-3000:]
    other = run("another-seed")
    assert other.returncode == 1 and "assert " in other.stdout, other.stdout[-3000:]
