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

from app.errors import QencodeError
from app.query import decode_query, parse_query
from tests.conftest import QthumbProcess

QENCODE_PATHS = {f"/v1/{m}" for m in ("access_token", "create_task", "start_encode2",
                                      "start_encode", "status")}  # fmt: skip


def operations(base_url: str) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_never_answers_500(qthumb: QthumbProcess, mode: GenerationMode) -> None:
    """Every operation of the app's own OpenAPI schema, over real HTTP, 30 cases each."""
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
            if case.path.startswith("/v1/") and not case.path.startswith("/v1/upload_file"):
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
          "bitrate", "video_codec", "keyframes_only"]  # fmt: skip
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
