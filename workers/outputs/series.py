"""``output: "thumbnails"``: a frame every ``interval`` seconds, as files or sprite sheets, and
the WebVTT file that players read for seek-bar previews (docs/outputs.md, docs/compatibility.md)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image

from qthumb.app.qencode.fields.values import ImageFormat, url_scheme
from qthumb.app.qencode.formats import ThumbnailsSpec
from qthumb.app.qencode.trickplay import (
    HLS_TYPE,
    SheetTrack,
    Trickplay,
    dash_adaptation_set,
    extend_mpd,
    extend_multivariant,
    hls_image_stream,
    hls_media_playlist,
)
from qthumb.app.qencode.window import clip_window, series_count, series_times
from qthumb.app.tasks.results import EntryType
from qthumb.workers.failures import FormatFailure
from qthumb.workers.media.decode_pool import DecodePool
from qthumb.workers.media.frame_ranking import best_in_shot
from qthumb.workers.media.frames import VideoReader
from qthumb.workers.media.imaging import encode, encode_bytes, render, target_size
from qthumb.workers.media.logos import LoadedLogo, draw_logos
from qthumb.workers.media.picture import Picture
from qthumb.workers.media.placeholders import placeholder
from qthumb.workers.media.probe import MediaInfo
from qthumb.workers.media.scenes import Shot, find_shots
from qthumb.workers.outputs.products import Product
from qthumb.workers.outputs.sprites import SheetComposer, SheetLayout
from qthumb.workers.outputs.trickplay import BifTiles, product
from qthumb.workers.outputs.webvtt import Cue, render_vtt, tile_cues

TILES_IN_FLIGHT_BYTES = 256 * 1024 * 1024  # decoded RGB tiles held between readers and sheet


@dataclass(frozen=True)
class Tile:
    """A frame of the series as it goes on a sheet or into a file."""

    image: Image.Image
    time: float  # the frame's own time in the source
    placeholder: str | None = None


def frame_count(spec: ThumbnailsSpec, info: MediaInfo) -> int:
    """Frames the series asks for, counted without building the list of times."""
    return series_count(spec.interval, clip_window(spec, info.duration))


def make_thumbnails(
    source: Path,
    info: MediaInfo,
    spec: ThumbnailsSpec,
    out_dir: Path,
    progress: Callable[[float], None],
    readers: int,
    max_frames: int,
    max_pixels: int,
    logos: Sequence[LoadedLogo] = (),
    refer: Callable[[int, str], str] | None = None,
    manifest: str | None = None,
) -> list[Product]:
    """Frames (``sprite: 0``) or sheets (``sprite: 1``), then the VTT (``spec.vtt_name``). The count
    of frames has been checked against ``max_frames`` (``check_task``) before this runs.
    ``refer(n, file name)``: how the VTT and the storyboard JSON name sheet ``n`` (default:
    its file name, relative to them)."""
    window = clip_window(spec, info.duration)
    starts = times = series_times(spec.interval, window, max_frames)  # a cue starts at its tile
    shots: list[Shot] = []
    if spec.scenes:  # a frame a shot, the best of its middle (smart's ranking); its cue the shot
        shots = find_shots(source, info, window, spec.interval, max_frames)
        starts = [shot.start for shot in shots]
        with VideoReader(source, info, readers) as reader:
            times = [best_in_shot(reader, shot.start, shot.end) for shot in shots]
    ext = spec.image_format.extension
    products: list[Product] = []
    texts = [""] * len(times)
    tile = target_size(info.display_size, spec.sizing)  # CSS pixels: what the VTT says
    dpr = spec.dpr
    pixels = replace(spec.sizing, width=tile[0] * dpr, height=tile[1] * dpr, resolution=None)
    layout = SheetLayout.plan(
        (tile[0] * dpr, tile[1] * dpr),
        spec.columns,
        len(times),
        max_pixels,
        uniform=spec.has_tracks,
    )
    names = spec.sheet_names(layout.sheets)
    shown = names if refer is None else [refer(n, name) for n, name in enumerate(names)]
    sheet_bytes = [0] * layout.sheets
    bif = BifTiles(out_dir / ".bif-tiles") if Trickplay.BIF in spec.trickplay else None

    def emit(sheet: int, image: Image.Image) -> None:
        encoded = encode(image, spec.image_format, spec.quality, out_dir / names[sheet])
        sheet_bytes[sheet] = encoded.size
        products.append(_product(encoded.path, EntryType.SPRITE, spec, encoded.size, image.size))

    composer = SheetComposer(layout, emit) if spec.sprite else None

    def frame_out(picture: Picture) -> Tile:
        if spec.placeholder is None:
            return Tile(
                draw_logos(render(picture, pixels, spec.deinterlace or None), logos, picture.time),
                picture.time,
            )
        image = draw_logos(render(picture, pixels, spec.deinterlace or None), logos, picture.time)
        return Tile(image, picture.time, placeholder(image, spec.placeholder))

    # Tiles in flight (one a reader, and those queued) stay within a budget: 160x90 tiles keep
    # every core busy, a 64-Mpx tile is made one at a time.
    in_flight = max(1, TILES_IN_FLIGHT_BYTES // (tile[0] * tile[1] * dpr * dpr * 3))
    readers = max(1, min(readers, in_flight))
    decoded = _decoded(source, info, times, frame_out, readers, spec, layout, in_flight)
    hashes: list[str | None] = [None] * len(times)
    # thumb_0001.<ext>, as Qencode names them; a series past 9,999 frames pads every name to
    # its count's digits, so the names still sort in time order
    digits = max(4, len(str(len(times))))
    for done, (k, made) in enumerate(decoded, start=1):
        hashes[k] = made.placeholder
        if composer is None:
            name = f"thumb_{k + 1:0{digits}d}.{ext}"
            encoded = encode(made.image, spec.image_format, spec.quality, out_dir / name)
            dims = made.image.size
            products.append(_product(encoded.path, EntryType.FRAME, spec, encoded.size, dims, made))
            texts[k] = name
        else:
            if bif is not None:
                bif.add(k, encode_bytes(made.image, ImageFormat.JPG, spec.quality))
            sheet, x, y = composer.put(k, made.image)
            # HiDPI: the sheet has dpr pixels a CSS pixel; the VTT speaks CSS pixels
            texts[k] = f"{shown[sheet]}#xywh={x // dpr},{y // dpr},{tile[0]},{tile[1]}"
        progress(done / len(times))
    products.sort(key=lambda p: p.name)
    cues = tile_cues(starts, window.end, texts)
    if spec.storyboard:
        products.append(
            _storyboard(out_dir, spec.storyboard_name, cues, tile, layout, shown, dpr, hashes)
        )
    vtt = out_dir / spec.vtt_name
    vtt.write_text(render_vtt(cues), encoding="utf-8", newline="\n")
    products.append(product(vtt, EntryType.VTT, "text/vtt"))
    if shots:
        chapters = out_dir / spec.trickplay_name("-chapters.vtt")
        titles = [f"Chapter {n}" for n in range(1, len(shots) + 1)]
        chapters.write_text(
            render_vtt(tile_cues(starts, window.end, titles)), encoding="utf-8", newline="\n"
        )
        products.append(product(chapters, EntryType.CHAPTERS, "text/vtt"))
    if spec.trickplay:
        starts = [times[n * layout.per_sheet] for n in range(layout.sheets)]
        track = SheetTrack(
            shown,
            sheet_bytes,
            starts,
            window.end,
            (layout.tile_width, layout.tile_height),
            layout.columns,
            layout.rows_per_sheet,
            spec.interval,
        )
        products += _trickplay(spec, track, out_dir, bif, times, manifest)
    return products


def _trickplay(
    spec: ThumbnailsSpec,
    track: SheetTrack,
    out_dir: Path,
    bif: BifTiles | None,
    times: Sequence[float],
    manifest: str | None,
) -> list[Product]:
    """The trickplay files asked for, written beside the VTT (``workers.outputs.trickplay``)."""
    made = []
    if Trickplay.HLS in spec.trickplay:
        playlist = out_dir / spec.trickplay_name(".m3u8")
        playlist.write_text(hls_media_playlist(track), encoding="utf-8", newline="\n")
        stream = out_dir / spec.trickplay_name("-image-stream.m3u8")
        stream.write_text(hls_image_stream(track, playlist.name), encoding="utf-8", newline="\n")
        made += [product(p, EntryType.HLS, HLS_TYPE) for p in (playlist, stream)]
    if Trickplay.DASH in spec.trickplay:
        adaptation = out_dir / spec.trickplay_name("-image-adaptation-set.xml")
        adaptation.write_text(dash_adaptation_set(track), encoding="utf-8", newline="\n")
        made.append(product(adaptation, EntryType.DASH, "application/xml"))
    if manifest is not None and spec.manifest:
        made.append(_extended(spec, spec.manifest, manifest, track, out_dir))
    if bif is not None:
        archive = out_dir / spec.trickplay_name(".bif")
        bif.write(archive, times)
        made.append(product(archive, EntryType.BIF, "application/octet-stream"))
    return made


def _decoded(
    source: Path,
    info: MediaInfo,
    times: list[float],
    frame_out: Callable[[Picture], Tile],
    readers: int,
    spec: ThumbnailsSpec,
    layout: SheetLayout,
    in_flight: int,
) -> Iterator[tuple[int, Tile]]:
    """(index, tile) for every time. Sheets are filled one after another, all readers working
    on the same sheet, so only one sheet is ever held (a 16,000-px sheet is ~100 MB)."""
    batches = [range(len(times))]
    if spec.sprite and layout.sheets > 1:
        n = layout.per_sheet
        batches = [range(s * n, min(len(times), (s + 1) * n)) for s in range(layout.sheets)]
    for batch in batches:
        chunk = times[batch.start : batch.stop]
        pool = DecodePool(
            source, info, chunk, frame_out, readers, spec.keyframes_only, queued=in_flight
        )
        for k, item in pool:
            yield batch.start + k, item


def _product(
    path: Path,
    kind: EntryType,
    spec: ThumbnailsSpec,
    size: int,
    dims: tuple[int, int],
    tile: Tile | None = None,
) -> Product:
    return Product(
        path=path,
        name=path.name,
        kind=kind,
        content_type=spec.image_format.content_type,
        width=dims[0],
        height=dims[1],
        size=size,
        time=None if tile is None else tile.time,
        placeholder=None if tile is None else tile.placeholder,
    )


def _storyboard(
    out_dir: Path,
    name: str,
    cues: list[Cue],
    tile: tuple[int, int],
    layout: SheetLayout,
    names: list[str],
    dpr: int,
    hashes: list[str | None],
) -> Product:
    """``thumbnails.json``: what the VTT says, for players and UIs that do not read WebVTT.
    Sizes and positions in CSS pixels (the sheets hold ``dpr`` pixels a CSS pixel); sheet
    names relative to this file, as the VTT's are; each tile's placeholder when asked for."""
    tiles = []
    for k, cue in enumerate(cues):
        sheet, x, y = layout.place(k)  # where the composer put tile k, in the sheet's pixels
        entry: dict[str, object] = {
            "start": round(cue.start, 3),
            "end": round(cue.end, 3),
            "sheet": sheet,
            "x": x // dpr,
            "y": y // dpr,
        }
        if hashes[k] is not None:
            entry["placeholder"] = hashes[k]
        tiles.append(entry)
    board = {
        "version": 1,
        "tile_width": tile[0],
        "tile_height": tile[1],
        "dpr": dpr,
        "columns": layout.columns,
        "rows": layout.rows_per_sheet,
        "sheets": [
            {"url": name, "width": w // dpr, "height": h // dpr}
            for name, (w, h) in ((n, layout.sheet_size(i)) for i, n in enumerate(names))
        ],
        "tiles": tiles,
    }
    path = out_dir / name
    path.write_text(json.dumps(board, separators=(",", ":")), encoding="utf-8")
    return Product(
        path=path,
        name=name,
        kind=EntryType.STORYBOARD,
        content_type="application/json",
        size=path.stat().st_size,
    )


def _extended(
    spec: ThumbnailsSpec, where: str, manifest: str, track: SheetTrack, out_dir: Path
) -> Product:
    """The user's multivariant playlist or MPD with the image track added, beside it."""
    base = where if url_scheme(where) in ("http", "https") else None
    is_hls = manifest.lstrip("\ufeff \r\n").startswith("#EXTM3U")
    kind = Trickplay.HLS if is_hls else Trickplay.DASH
    if kind not in spec.trickplay:
        shape = "an HLS playlist" if is_hls else "not an HLS playlist (an MPD?)"
        raise FormatFailure(f"manifest {where[:200]}: it is {shape}: it needs trickplay {kind}")
    try:
        if is_hls:
            stream = hls_image_stream(track, spec.trickplay_name(".m3u8"))
            text, suffix = extend_multivariant(manifest, base, stream), "-manifest.m3u8"
        else:
            adaptation = dash_adaptation_set(track)
            text, suffix = extend_mpd(manifest, base, adaptation), "-manifest.mpd"
    except ValueError as exc:
        raise FormatFailure(f"manifest {where[:200]}: {exc}") from None
    copy = out_dir / spec.trickplay_name(suffix)
    copy.write_text(text, encoding="utf-8", newline="\n")
    if is_hls:
        return product(copy, EntryType.HLS, HLS_TYPE)
    return product(copy, EntryType.DASH, "application/dash+xml")
