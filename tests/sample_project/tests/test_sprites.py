"""What a team's own test looks like with qthumb's pytest plugin: the `qthumb` fixture is a
local Qencode API; the official Python SDK talks to it unchanged. (Run by
tests/test_packaging.py in a fresh venv where qthumb is installed from its wheel.)"""

import io
import subprocess

import qencode3
import requests
from PIL import Image

# qencode3.client is a function until the SDK imports its own qencode3.client module, which
# then replaces it: keep the function (an SDK quirk, not qthumb's).
make_client = qencode3.client


def make_clip(path):
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=320x180:r=25:d=6",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ],
        check=True,
    )


def test_sprite_and_vtt(qthumb):
    clip = qthumb.media_dir / "clip.mp4"
    make_clip(clip)
    client = make_client(qthumb.api_key, api_url=qthumb.url)
    task = client.create_task()
    task.custom_start(
        {
            "query": {
                "source": str(clip),
                "format": [
                    {
                        "output": "thumbnails",
                        "interval": 2,
                        "sprite": 1,
                        "columns": 3,
                        "width": 160,
                    },
                ],
            }
        }
    )
    assert not task.error, task.message
    status = qthumb.wait(task.task_token)
    assert status["status"] == "completed", status["error_description"]
    sprite = next(i for i in status["images"] if i["type"] == "sprite")
    with Image.open(io.BytesIO(requests.get(sprite["url"], timeout=30).content)) as sheet:
        assert sheet.size == (480, 90)  # 3 tiles of 160x90: 0, 2 and 4 s


def test_a_bad_query_says_why(qthumb):
    client = make_client(qthumb.api_key, api_url=qthumb.url)
    task = client.create_task()
    task.custom_start({"query": {"source": "/nowhere.mp4", "format": [{"output": "thumbnailz"}]}})
    assert not task.error, f"qthumb said: {task.message}"
