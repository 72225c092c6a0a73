"""Which files are videos by their names (folder sources of the offline commands, the
console's media list), and the videos a folder holds."""

from __future__ import annotations

from pathlib import Path

VIDEO_SUFFIXES = frozenset(
    {
        ".mp4",
        ".mov",
        ".m4v",
        ".mkv",
        ".webm",
        ".avi",
        ".ts",
        ".mts",
        ".m2ts",
        ".mpg",
        ".mpeg",
        ".flv",
        ".wmv",
        ".ogv",
        ".3gp",
        ".mxf",
    }
)


def list_media(folders: list[str], limit: int = 500) -> list[str]:
    """Absolute paths of the videos in ``folders`` and their sub-folders, sorted, at most
    ``limit`` (a huge library must not make a huge page)."""
    found: list[str] = []
    for folder in folders:
        root = Path(folder)
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
                found.append(str(path.resolve()))
                if len(found) >= limit:
                    return found
    return found
