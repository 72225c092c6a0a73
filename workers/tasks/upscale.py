"""``upscale`` (top level, default 0), as Qencode documents it: a video output (``mp4``,
``webm``, ``gif``) larger than the source on either side is not made; when every video output
is, the first is made at the source's size. Images are made at the size asked whatever the
source (as Mux and imgix do): a poster is often wanted larger than a small clip.

Each output left out, or made smaller, is a warning tagged as that format."""

from __future__ import annotations

from dataclasses import replace

from qthumb.app.qencode.formats import FormatSpec, SizedSpec
from qthumb.app.qencode.kinds import Array
from qthumb.app.qencode.query import Query
from qthumb.app.tasks.results import Notice
from qthumb.app.tasks.wire import format_tag
from qthumb.workers.media.imaging import shown_size, target_size
from qthumb.workers.media.probe import MediaInfo


def _larger(spec: FormatSpec, info: MediaInfo) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """(asked size, source size) when ``spec`` is a video output larger than the source."""
    if not isinstance(spec, SizedSpec) or spec.array is not Array.VIDEOS:
        return None
    source = shown_size(info.display_size, spec.sizing)
    asked = target_size(info.display_size, spec.sizing)
    if asked[0] > source[0] or asked[1] > source[1]:
        return asked, source
    return None


def without_upscale(query: Query, info: MediaInfo) -> tuple[tuple[FormatSpec, ...], list[Notice]]:
    """The formats to make from a source of ``info``, and what was changed, as warnings."""
    if query.upscale:
        return query.formats, []
    larger = {spec.index: found for spec in query.formats if (found := _larger(spec, info))}
    if not larger:
        return query.formats, []
    videos = [s for s in query.formats if isinstance(s, SizedSpec) and s.array is Array.VIDEOS]
    every = len(larger) == len(videos)
    kept: list[FormatSpec] = []
    notices: list[Notice] = []
    for spec in query.formats:
        found = larger.get(spec.index)
        if found is None:
            kept.append(spec)
            continue
        (aw, ah), (sw, sh) = found
        tag = format_tag(spec.output, spec.index)
        where = f"format {spec.index} ({spec.output})"
        if every and spec is videos[0]:
            assert isinstance(spec, SizedSpec)
            sizing = replace(spec.sizing, width=None, height=None, resolution=None)
            kept.append(replace(spec, sizing=sizing))
            notices.append(
                Notice(
                    f"{where} made at the source's size",
                    f"{aw}x{ah} is larger than the {sw}x{sh} source and every "
                    "video output is: the first is made at the source's size "
                    "(upscale: 0)",
                    tag,
                )
            )
            continue
        notices.append(
            Notice(
                f"{where} not made",
                f"{aw}x{ah} is larger than the {sw}x{sh} source (upscale: 0; "
                "set upscale: 1 to make it)",
                tag,
            )
        )
    return tuple(kept), notices
