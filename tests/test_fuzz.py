"""Fuzzing, bounded: schemathesis against the running app's OpenAPI schema, and hypothesis on
the query parser. Neither may find a 500, an unhandled exception or a non-Qencode reply."""

from __future__ import annotations

import json
from typing import Any

import hypothesis.strategies as st
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from qthumb.app.errors import QencodeError
from qthumb.app.qencode.query import decode_query, parse_query
from tests.conftest import QthumbProcess

QENCODE_PATHS = {f"/v1/{m}" for m in ("access_token", "create_task", "start_encode2",
                                      "start_encode", "status")}  # fmt: skip


def operations(base_url: str) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_never_answers_500(
    qthumb: QthumbProcess, backend: dict[str, str], mode: GenerationMode
) -> None:
    """Every operation of the app's own OpenAPI schema, over real HTTP, 30 cases each. Invalid
    input (negative mode) is refused by the form and query layer, the same code on both
    backends; what reaches an engine is at most the lookup of an unknown token, which the
    positive cases send on both. So negative mode runs on the embedded backend only (~21 s)."""
    if mode is GenerationMode.NEGATIVE and backend:
        pytest.skip("invalid input is refused before the engines: fuzzed on the embedded one")
    ops = operations(qthumb.base_url)
    assert {op.path for op in ops} >= {"/v1/access_token", "/v1/status", "/v1/start_encode2"}
    for op in ops:
        if mode is GenerationMode.NEGATIVE and op.path not in QENCODE_PATHS:
            continue  # bare string path parameters have no invalid value to generate

        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)  # fmt: skip
        @given(case=op.as_strategy(generation_mode=mode))
        def check(case: Any) -> None:
            response = case.call_and_validate(base_url=qthumb.base_url, checks=[not_a_server_error])
            if case.path.startswith(
                ("/v1/thumbnail", "/v1/storyboard", "/v1/animated", "/v1/trickplay")
            ):
                # an image endpoint: errors carry a real HTTP status and Qencode's JSON
                assert response.status_code in (200, 304, 400, 404, 409, 422)
                if response.status_code >= 400:
                    assert isinstance(response.json()["error"], int)
            elif case.path.startswith("/v1/") and not case.path.startswith("/v1/upload_file"):
                body = response.json()
                assert response.status_code in (200, 413), body
                assert isinstance(body["error"], int), body

        check()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                 max_size=5),
    max_leaves=25,
)  # fmt: skip
FIELDS = ["output", "time", "width", "height", "size", "resolution", "resize_mode",
          "image_format", "quality", "interval", "sprite", "columns", "frame_number",
          "destination", "tag", "user_tag", "start_time", "duration", "framerate", "keyframe",
          "bitrate", "video_codec", "keyframes_only", "pad_color", "placeholder", "smart",
          "rotate", "storyboard"]  # fmt: skip
FORMAT = st.dictionaries(st.sampled_from(FIELDS), JSON | st.sampled_from(
    ["thumbnail", "thumbnails", "mp4", "webm", "0.5", "320x240", "-1", "1e309", "NaN", ""]
), max_size=8)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.one_of(
    st.text(max_size=200),
    st.builds(lambda src, fmts: json.dumps({"query": {"source": src, "format": fmts}}),
              JSON, st.lists(FORMAT, max_size=4)),
    st.builds(lambda q: json.dumps(q), JSON),
))  # fmt: skip
def test_query_parser_only_raises_qencode_errors(raw: str) -> None:
    try:
        parse_query(decode_query(raw))
    except QencodeError as exc:
        assert exc.message and isinstance(exc.code, int)


# Numbers at the edges of float and int: the values that overflowed before.
EXTREME = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([5e-324, 1e-9, 1e308, -1e308, 2**63, 10**18, 10**400, "1e400", "1e-300"]),
    st.integers(min_value=-(10**30), max_value=10**30),
)
NUMERIC = ["time", "interval", "start_time", "duration", "frame_number", "width", "height",
           "columns", "quality"]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    output=st.sampled_from(["thumbnail", "thumbnails", "mp4"]),
    values=st.dictionaries(st.sampled_from(NUMERIC), EXTREME, max_size=5),
    source_seconds=st.floats(min_value=0.0, max_value=36_000.0),
    frame_rate=st.one_of(st.none(), st.floats(min_value=0.001, max_value=1000.0)),
)
def test_query_limits_and_window_maths_never_overflow(
    output: str, values: dict[str, Any], source_seconds: float, frame_rate: float | None
) -> None:
    """What start_encode2 accepts, the worker's maths can compute: no OverflowError, no
    infinite or negative time, no count past the limit that builds a list."""
    from qthumb.app.qencode.formats import ThumbnailSpec, ThumbnailsSpec
    from qthumb.app.qencode.limits import check_query
    from qthumb.app.qencode.window import clip_window, series_count, thumbnail_time
    from qthumb.app.settings import Settings

    raw = json.dumps({"query": {"source": "/x.mp4", "format": [{"output": output, **values}]}})
    try:
        query = parse_query(decode_query(raw))
        check_query(query, Settings(_env_file=None))  # type: ignore[call-arg]
    except QencodeError:
        return
    spec = query.formats[0]
    window = clip_window(spec, source_seconds)
    assert 0.0 <= window.start <= window.end <= source_seconds
    if isinstance(spec, ThumbnailsSpec):
        assert series_count(spec.interval, window) >= 1
    if isinstance(spec, ThumbnailSpec):
        t = thumbnail_time(spec, source_seconds, frame_rate)
        assert 0.0 <= t <= source_seconds


TOKENS_TEXT = st.one_of(
    st.text(max_size=80),
    st.builds(json.dumps, JSON),
    st.integers(min_value=1, max_value=200_000).map(lambda n: "[" * n + "]" * n),
)


@settings(max_examples=300, deadline=None)
@given(single=st.lists(TOKENS_TEXT, max_size=3), bracketed=st.lists(TOKENS_TEXT, max_size=3))
def test_task_tokens_parser_only_raises_qencode_errors(
    single: list[str], bracketed: list[str]
) -> None:
    from qthumb.app.api.service import split_task_tokens

    try:
        tokens = split_task_tokens(single, bracketed)
    except QencodeError as exc:
        assert exc.code == 13
        return
    assert all(isinstance(t, str) for t in tokens)


def test_storage_paths_never_answer_500(qthumb: QthumbProcess) -> None:
    """Any text in any segment of a /storage path: 404 or a file, never a server error."""
    from urllib.parse import quote

    import httpx

    with httpx.Client(base_url=qthumb.base_url) as http:

        @settings(max_examples=200, deadline=None, database=None)
        @given(st.tuples(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=12),
                         st.text(min_size=1, max_size=40)))  # fmt: skip
        def check(parts: tuple[str, str, str]) -> None:
            path = "/".join(quote(p, safe="") for p in parts)
            response = http.get(f"/storage/{path}")
            assert response.status_code < 500, (parts, response.status_code)

        check()
