"""The README's promises: the curl session works as pasted, and every setting is listed."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from PIL import Image

from qthumb.app.settings import Settings
from tests.conftest import QthumbProcess

README = Path(__file__).resolve().parent.parent / "README.md"


def code_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, flags=re.S)


def test_first_block_is_the_two_commands():
    assert code_blocks(README.read_text())[0].split("\n")[:2] == ["make run", "make test"]


def test_every_setting_is_documented():
    text = README.read_text()
    for name in Settings.model_fields:
        assert f"`QTHUMB_{name.upper()}`" in text, name


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
    [block] = [b for b in code_blocks(README.read_text()) if "$Q/faults" in b]
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
