"""The query parser: Qencode's leniency, and refusals that name the field."""

from __future__ import annotations

import json

import pytest

from qthumb.app.errors import BadQuery, FieldRequired, QueryNotWrapped
from qthumb.app.qencode.query import (
    Destination,
    ImageFormat,
    ResizeMode,
    decode_query,
    ignored_fields,
    parse_query,
)

THUMB = {"output": "thumbnail"}


def one(fmt: dict) -> object:
    return parse_query({"source": "/x.mp4", "format": [fmt]}).formats[0]


def test_wrapped_and_twice_encoded_are_the_same_and_bare_is_error_19():
    inner = {"source": "/x.mp4", "format": [THUMB]}
    for raw in (json.dumps({"query": inner}), json.dumps({"query": json.dumps(inner)})):
        assert decode_query(raw) == inner
    with pytest.raises(QueryNotWrapped) as bare:
        decode_query(json.dumps(inner))
    assert (bare.value.code, bare.value.message) == (19, "query field is required")
    assert decode_query(json.dumps(inner), wrapped=False) == inner  # qthumb run's files


def test_numbers_as_strings_and_tag_forms():
    spec = one({"output": "thumbnail", "time": "0.15", "width": "920", "height": "500",
                "destination": "", "user_tag": "15_920x500"})  # fmt: skip
    assert (spec.time, spec.sizing.width, spec.sizing.height) == (0.15, 920, 500)
    assert spec.user_tag == "15_920x500" and spec.destinations == ()
    assert one({"output": "thumbnail", "tag": 7}).user_tag == "7"


@pytest.mark.parametrize(
    ("value", "fraction"),
    [(0, 0.0), (1, 1.0), ("0.5", 0.5), (50, 0.5), ("100", 1.0), (1.5, 0.015), (None, 0.5)],
)
def test_time_is_fraction_or_percent(value, fraction):
    assert one({**THUMB, "time": value}).time == pytest.approx(fraction)


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        ({**THUMB, "time": -0.1}, "query.format[0].time must be a fraction 0-1 or a percent"),
        ({**THUMB, "time": "soon"}, "query.format[0].time must be a number, got 'soon'"),
        ({**THUMB, "time": True}, "query.format[0].time must be a number, not true"),
        ({**THUMB, "width": 0}, "query.format[0].width must be at least 1, got 0"),
        ({**THUMB, "width": 12.5}, "query.format[0].width must be a whole number, got 12.5"),
        ({**THUMB, "height": 99999}, "query.format[0].height must be at most 16000, got 99999"),
        ({**THUMB, "size": "big"}, "query.format[0].size must look like 320x240, got 'big'"),
        ({**THUMB, "resize_mode": "fit"}, "query.format[0].resize_mode must be scale, crop or pad"),
        ({**THUMB, "image_format": "gif"}, "query.format[0].image_format must be png, jpg,"),
        ({**THUMB, "quality": 101}, "query.format[0].quality must be between 1 and 100"),
        ({**THUMB, "frame_number": -1}, "query.format[0].frame_number must be at least 0"),
        ({"output": "thumbnails"}, "query.format[0].interval field is required"),
        ({"output": "thumbnails", "interval": 0}, "query.format[0].interval must be greater"),
        ({"output": "thumbnails", "interval": 5, "sprite": 2}, "query.format[0].sprite must be"),
        ({"output": "thumbnails", "interval": 5, "columns": 0}, "query.format[0].columns must"),
        ({**THUMB, "destination": [{"key": "k"}]}, "query.format[0].destination[0].url field"),
        ({**THUMB, "destination": "s3://x"}, "query.format[0].destination must be an object"),
        ({"output": 3}, "query.format[0].output: unknown output 3"),
        ("thumbnail", "query.format[0] must be an object"),
    ],
)
def test_refusals_name_the_field(fmt, message):
    with pytest.raises((BadQuery, FieldRequired)) as info:
        parse_query({"source": "/x.mp4", "format": [fmt]})
    assert info.value.message.startswith(message)


def test_sizes_formats_and_destinations():
    spec = one(
        {
            **THUMB,
            "size": "320x240",
            "resize_mode": "crop",
            "image_format": "JPEG",
            "quality": "70",
            "destination": [
                {"url": "s3://h/b/k.jpg", "key": "a", "secret": "b", "permissions": "public-read"}
            ],
        }
    )
    assert (spec.sizing.width, spec.sizing.height, spec.sizing.mode) == (320, 240, ResizeMode.CROP)
    assert spec.image_format is ImageFormat.JPG and spec.quality == 70
    assert spec.destinations == (
        Destination(url="s3://h/b/k.jpg", key="a", secret="b", permissions="public-read"),
    )
    assert one({**THUMB, "destination": {}}).destinations == ()


def test_thumbnails_defaults():
    spec = one({"output": "thumbnails", "interval": "10", "sprite": "1"})
    assert (spec.interval, spec.sprite, spec.columns) == (10.0, True, 10)


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ({"output": "thumbnail", "destination": {"url": "s3://h/b/poster.jpg"}}, "jpg"),
        ({"output": "thumbnail", "destination": {"url": "s3://h/b/poster.JPEG"}}, "jpg"),
        ({"output": "thumbnail", "destination": {"url": "s3://h/b/a.webp"}}, "webp"),
        ({"output": "thumbnail", "destination": {"url": "s3://h/b/no-extension"}}, "png"),
        ({"output": "thumbnail", "file_extension": "jpg"}, "jpg"),
        ({"output": "thumbnails", "interval": 1, "file_extension": ".webp",
          "destination": {"url": "s3://h/b/folder/"}}, "webp"),
        ({"output": "thumbnail", "image_format": "jpeg",
          "destination": {"url": "s3://h/b/a.jpg"}}, "jpg"),
    ],
)  # fmt: skip
def test_the_file_name_decides_the_encoding_without_image_format(fmt: dict, expected: str):
    assert parse_query({"source": "/x", "format": [fmt]}).formats[0].image_format == expected


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        ({"output": "thumbnail", "image_format": "png", "destination": {"url": "s3://h/b/a.jpg"}},
         "query.format[0].image_format is png but query.format[0].destination 'a.jpg' is jpg"),
        ({"output": "thumbnail", "destination": [{"url": "s3://h/b/a.jpg"},
                                                 {"url": "s3://h/b/a.png"}]},
         "query.format[0]: query.format[0].destination[0] 'a.jpg' is jpg but "
         "query.format[0].destination[1] 'a.png' is png"),
        ({"output": "thumbnail", "destination": {"url": "s3://h/b/a.gif"}},
         "query.format[0].destination: 'a.gif' names a .gif; qthumb writes png, jpg, webp or avif"),
        ({"output": "thumbnail", "file_extension": "tga"},
         "query.format[0].file_extension must be png, jpg, webp or avif, got 'tga'"),
    ],
)  # fmt: skip
def test_contradicting_names_and_formats_are_refused(fmt: dict, message: str):
    with pytest.raises(BadQuery) as caught:
        parse_query({"source": "/x", "format": [fmt]})
    assert caught.value.message == message


def test_the_stored_form_reads_back_every_kind_equal():
    """``Query.to_json`` is what the worker runs: every kind, every field, through JSON."""
    from qthumb.app.qencode.formats import KINDS
    from qthumb.app.qencode.query import Query

    query = parse_query({"source": "https://a.example/x.mp4", "callback_url":
        "https://c.example/cb", "format": [
        {"output": "thumbnail", "time": 30, "width": 100, "image_format": "webp", "smart": 1,
         "destination": {"url": "s3://h/b/k.webp", "key": "a", "secret": "b",
                         "permissions": "public-read"}},
        {"output": "thumbnails", "interval": 2, "sprite": 1, "resize_mode": "crop", "width": 50,
         "height": 50, "dpr": 2, "storyboard": 1, "start_time": 1, "duration": 9},
        {"output": "mp4", "stream": [{"size": "320x240", "framerate": "25", "keyframe": "2s"}]},
        {"output": "gif", "image_format": "webp", "quality": 60},
        *({"output": name} for name in KINDS if name not in
          ("thumbnail", "thumbnails", "mp4", "gif"))]})  # fmt: skip
    stored = json.loads(json.dumps(query.to_json()))
    again = Query.from_json(stored)
    assert again == query
    assert [type(spec) for spec in again.formats] == [type(spec) for spec in query.formats]


def test_fields_that_change_nothing_are_accepted_without_a_warning():
    """Qencode's docs recommend encoder_version 2 on every job, and its thumbnail example sends
    an mp4 entry with file_extension "mp4": neither is "ignored"; a field that would change
    the output and is not applied still is."""
    query = {"source": "/x.mp4", "encoder_version": 2, "use_subtask_callback": 1,
             "format": [{"output": "mp4", "file_extension": "mp4"},
                        {"output": "gif", "file_extension": "gif"},
                        {"output": "thumbnail", "i_frames_only": 1}]}  # fmt: skip
    assert ignored_fields(query) == ["query.format[2].i_frames_only"]
    for output, extension in (("mp4", "webm"), ("webm", "mp4"), ("gif", "webp")):
        with pytest.raises(BadQuery, match=f"makes a .{output} file"):
            parse_query({"source": "/x.mp4", "format": [
                {"output": output, "file_extension": extension}]})  # fmt: skip


def test_a_sprite_destination_ending_in_a_file_name_names_the_sheet():
    sprite = {"output": "thumbnails", "interval": 1, "sprite": 1}
    named = one({**sprite, "destination": {"url": "s3://h:9/b/x/preview.webp?v=1"}})
    assert named.sheet_name == "preview" and named.image_format is ImageFormat.WEBP
    assert named.destinations[0].url == "s3://h:9/b/x/?v=1"
    assert (named.sheet_names(1), named.sheet_names(2)) == (
        ["preview.webp"], ["preview_01.webp", "preview_02.webp"])  # fmt: skip
    assert (named.vtt_name, named.storyboard_name) == ("preview.vtt", "preview.json")
    # a folder stays a folder, and frames (sprite: 0) always go in one
    for fmt in ({**sprite, "destination": {"url": "s3://h:9/b/v1.2"}},
                {**sprite, "sprite": 0, "destination": {"url": "s3://h:9/b/a.jpg"}}):  # fmt: skip
        folder = one(fmt)
        assert folder.sheet_name is None and folder.destinations == fmt_destinations(fmt)
        assert folder.vtt_name == "thumbnails.vtt"


def fmt_destinations(fmt: dict) -> tuple[Destination, ...]:
    return (Destination(url=fmt["destination"]["url"]),)


@pytest.mark.parametrize("urls", [["s3://h:9/b/a.jpg", "s3://h:9/b/folder"],
                                  ["s3://h:9/b/a.jpg", "s3://h:9/c/b.jpg"]])  # fmt: skip
def test_destinations_that_name_the_sprite_differently_are_refused(urls: list[str]):
    """The VTT names its sheets once: two destinations cannot give them two names."""
    fmt = {"output": "thumbnails", "interval": 1, "sprite": 1,
           "destination": [{"url": u} for u in urls]}  # fmt: skip
    with pytest.raises(BadQuery, match="names the sprite differently"):
        one(fmt)
