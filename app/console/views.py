"""What the console's task page shows, computed from a task: its pictures grouped for display,
sprite sheets with the cue grid their VTT draws on them, the VTT text, the player's sources,
callbacks, and the curl commands that reproduce the task."""

from __future__ import annotations

import json
import re
import shlex
from typing import Any
from urllib.parse import urljoin

from qthumb.app.qencode.kinds import Array
from qthumb.app.qencode.query import url_scheme
from qthumb.app.settings import Settings
from qthumb.app.storage.files import Files, result_path
from qthumb.app.storage.objects import FileError, read_all
from qthumb.app.tasks.model import TaskRecord
from qthumb.app.tasks.outbox import CallbackOutbox
from qthumb.app.tasks.results import EntryType
from qthumb.app.tasks.wire import status_object

_CUE = re.compile(
    r"^(\d+):(\d\d):(\d\d)\.(\d{3}) --> (\d+):(\d\d):(\d\d)\.(\d{3})\n"
    r"(.+?)(?:#xywh=(\d+),(\d+),(\d+),(\d+))?$"
)
_STORAGE = re.compile(r"/storage/([0-9a-f]{32})/(\d+)/([^/?#]+)$")
MAX_VTT_BYTES = 2_000_000


def timestamp(seconds: float) -> str:
    """``m:ss.mmm``, for people reading times on the page."""
    ms = round(seconds * 1000)
    return f"{ms // 60000}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def parse_vtt(text: str) -> list[dict[str, Any]]:
    """Cues as ``start``, ``end``, ``target`` (the image, relative as written) and ``xywh``."""
    cues = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        found = _CUE.match(block.strip())
        if not found:
            continue
        g = found.groups()
        start = int(g[0]) * 3600 + int(g[1]) * 60 + int(g[2]) + int(g[3]) / 1000
        end = int(g[4]) * 3600 + int(g[5]) * 60 + int(g[6]) + int(g[7]) / 1000
        xywh = tuple(int(v) for v in g[9:13]) if g[9] is not None else None
        cues.append({"start": start, "end": end, "target": g[8], "xywh": xywh})
    return cues


def _read_stored(url: str, files: Files) -> str | None:
    """A temporary-storage file's text (VTT), read from qthumb's own store."""
    found = _STORAGE.search(url)
    if found is None:
        return None
    key = result_path(*found.groups())
    try:
        data = None if key is None else read_all(files.results, key, MAX_VTT_BYTES)
    except FileError:  # the store is down: the page shows no cues rather than failing
        return None
    return None if data is None else data.decode("utf-8", "replace")


def _name(url: str) -> str:
    return url.rsplit("/", 1)[-1].split("?", 1)[0]


def task_view(
    task: TaskRecord, settings: Settings, files: Files, outbox: CallbackOutbox
) -> dict[str, Any]:
    status = status_object(task, settings.base_url)
    source = task.source
    images = [i for i in status[Array.IMAGES] if i.get("url")]
    vtts, sheets = [], []
    for vtt in (i for i in images if i.get("type") == EntryType.VTT):
        text = _read_stored(vtt["url"], files)
        vtts.append(
            {"url": vtt["url"], "name": _name(vtt["url"]), "text": text or "", "tag": vtt["tag"]}
        )
        cues = parse_vtt(text) if text else []
        for sheet in (i for i in images if i.get("type") == EntryType.SPRITE):
            if sheet["tag"].rsplit("-", 1)[0] != vtt["tag"].rsplit("-", 1)[0]:
                continue  # another format's sheets
            mine = [
                c for c in cues if c["xywh"] and urljoin(vtt["url"], c["target"]) == sheet["url"]
            ]
            sheets.append(_sheet(sheet, mine))
    frames = [
        {**i, "time_text": timestamp(i["time"]) if i.get("time") is not None else "—"}
        for i in images
        if i.get("type") in (EntryType.THUMBNAIL, EntryType.FRAME)
    ]
    videos = [
        {"url": v["url"], "name": _name(v["url"]), "user_tag": v.get("user_tag")}
        for v in status[Array.VIDEOS]
        if v.get("url")
    ]
    failed = [
        e
        for e in (*status[Array.IMAGES], *status[Array.VIDEOS], *status[Array.AUDIOS])
        if e.get("error")
    ]
    return {
        "task": task,
        "status": status,
        "status_json": json.dumps(status, indent=2),
        "source": source,
        "player": _player(task, source, vtts),
        "sheets": sheets,
        "frames": frames,
        "vtts": vtts,
        "videos": videos,
        "failed": failed,
        "callbacks": outbox.history(task.token),
    }


def _sheet(sheet: dict[str, Any], cues: list[dict[str, Any]]) -> dict[str, Any]:
    width, height = sheet.get("width") or 1, sheet.get("height") or 1
    boxes = []
    for c in cues:
        x, y, w, h = c["xywh"]
        boxes.append(
            {
                "left": round(100 * x / width, 4),
                "top": round(100 * y / height, 4),
                "w": round(100 * w / width, 4),
                "h": round(100 * h / height, 4),
                "start": timestamp(c["start"]),
                "end": timestamp(c["end"]),
            }
        )
    return {
        "url": sheet["url"],
        "name": _name(sheet["url"]),
        "width": width,
        "height": height,
        "cues": boxes,
    }


PREVIEW_WIDTH = 160  # the seek-bar preview's tiles when the task made no sprite


def _player(task: TaskRecord, source: str, vtts: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not task.query:
        return None
    if url_scheme(source) in ("http", "https"):
        video, label = source, "the source"
    else:
        video, label = f"/ui/tasks/{task.token}/source", "the source"
    if vtts:
        vtt, name = vtts[0]["url"], _name(vtts[0]["url"])
    else:  # no sprite made: the storyboard by URL, made on the first hover (app.on_demand)
        vtt = f"/v1/storyboard.vtt?task_token={task.token}&width={PREVIEW_WIDTH}"
        name = "storyboard.vtt, made on demand"
    query = f"task_token={task.token}&width={PREVIEW_WIDTH}"
    return {
        "video": video,
        "label": label,
        "vtt": vtt,
        "vtt_name": name,
        "duration": task.duration or 0,
        # the same previews for the players that do not read WebVTT (app.on_demand)
        "trickplay": [
            ("HLS image playlist", f"/v1/trickplay.m3u8?{query}"),
            ("its multivariant line", f"/v1/trickplay.m3u8?{query}&multivariant=1"),
            ("DASH image track", f"/v1/trickplay.mpd?{query}"),
            ("Roku BIF", f"/v1/trickplay.bif?{query}"),
        ],
    }


def curl_script(base_url: str, query: str, payload: str | None) -> str:
    """The commands that make the same task again (the key stays in the environment)."""
    try:
        inner = json.loads(query)
    except ValueError:
        inner = query
    body = json.dumps({"query": inner}, separators=(",", ":"))
    lines = [
        f"BASE={shlex.quote(base_url)}",
        'TOKEN=$(curl -s -d "api_key=$QTHUMB_API_KEY" "$BASE/v1/access_token" | jq -r .token)',
        'TASK=$(curl -s -d "token=$TOKEN" "$BASE/v1/create_task" | jq -r .task_token)',
        'curl -s "$BASE/v1/start_encode2" -d "task_token=$TASK" \\\n'
        f"  --data-urlencode query={shlex.quote(body)}"
        + (f" \\\n  --data-urlencode payload={shlex.quote(payload)}" if payload else ""),
        'curl -s "$BASE/v1/status" -d "task_tokens=$TASK"',
    ]
    return "\n".join(lines)
