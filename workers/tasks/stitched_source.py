"""A stitched query's source: each piece fetched as a source is (``workers.tasks.sources``: the
same egress rules, size cap and credentials), probed, its part checked against its length,
the whole against ``QTHUMB_MAX_SOURCE_SECONDS``, then joined into one file in a child process
(``workers.media.stitching``) under ``QTHUMB_VIDEO_TIMEOUT`` and the memory limit. A failure
names the piece: ``stitch[1]: HTTP 404 from …``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from qthumb.app.memory import memory_failure
from qthumb.app.qencode.stitch import Piece
from qthumb.app.settings import Settings
from qthumb.workers.failures import MediaError, SourceError, TaskFailure
from qthumb.workers.media.probe import probe
from qthumb.workers.outputs.encoding.run import run_child
from qthumb.workers.tasks.sources import FetchedSource


def stitched_source(
    pieces: tuple[Piece, ...],
    work: Path,
    settings: Settings,
    fetch: Callable[[str, Path], FetchedSource],
    progress: Callable[[float], None],
) -> FetchedSource:
    """The pieces joined into ``work/stitched.mkv``; ``fetch(url, folder)`` brings one piece
    (as ``fetch_source`` would the source), ``progress`` gets the part joined (0-1)."""
    # imported here: the joining needs NumPy, which a worker loads only for what needs it
    from qthumb.workers.media.stitching import PiecePlan, StitchPlan

    plans: list[PiecePlan] = []
    total, rate, audio = 0.0, 25.0, False
    for n, piece in enumerate(pieces):
        where = f"stitch[{n}]"
        folder = work / f"piece-{n}"
        folder.mkdir()
        try:
            fetched = fetch(piece.url, folder)
            info = probe(fetched.path, settings.max_source_pixels)
        except TaskFailure as exc:
            raise type(exc)(f"{where}: {exc.description}", store_down=exc.store_down) from None
        if piece.start_time >= info.duration:
            raise MediaError(
                f"{where}: start_time {piece.start_time:g} s is past its end "
                f"({info.duration:.3f} s)"
            )
        length = info.duration - piece.start_time
        if piece.duration is not None:
            length = min(length, piece.duration)
        total += length
        if total > settings.max_source_seconds:
            raise SourceError(
                f"the stitched source is longer than {settings.max_source_seconds:g} s "
                f"(QTHUMB_MAX_SOURCE_SECONDS) by {where}"
            )
        if n == 0:
            rate = info.frame_rate or rate
            width, height = (max(2, side // 2 * 2) for side in info.display_size)
        audio = audio or info.has_audio
        plans.append(
            PiecePlan(
                path=str(fetched.path),
                start=piece.start_time,
                length=length,
                first=info.start_time,
                display_size=info.display_size,
                rotation=info.rotation,
                max_pixels=info.max_pixels,
            )
        )
    out = work / "stitched.mkv"
    plan = StitchPlan(
        out=str(out), width=width, height=height, rate=rate, audio=audio, pieces=tuple(plans)
    )
    try:
        run_child(
            "workers.media.stitching",
            plan.to_json(),
            total,
            progress,
            settings.video_timeout,
            "stitched source",
            failure=MediaError,
        )
    except MemoryError:
        raise TaskFailure(f"stitch: {memory_failure(settings)}", transient=True) from None
    return FetchedSource(path=out, size=out.stat().st_size)
