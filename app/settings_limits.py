"""The limits of qthumb's settings: what one source, query, request or on-demand frame may
cost, and how long results are kept. Part of the one settings object (``app.settings.Settings``
inherits them); apart only to keep each file readable."""

from __future__ import annotations

import os

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from qthumb.app.egress import MAX_REDIRECTS


class LimitSettings(BaseSettings):
    """What a source, a query or a request may cost (``QTHUMB_`` variables, as every setting)."""

    model_config = SettingsConfigDict(env_prefix="QTHUMB_", extra="ignore")

    storage_ttl: float = Field(
        default=24 * 3600, gt=0, description="Seconds temporary-storage results are kept."
    )
    max_source_bytes: int = Field(
        default=20 * 1024**3, gt=0, description="Largest source download, in bytes."
    )
    source_connect_timeout: float = Field(
        default=10.0, gt=0, description="Seconds to connect to a source host."
    )
    source_read_timeout: float = Field(
        default=60.0, gt=0, description="Seconds without a byte from a source before giving up."
    )
    download_deadline: float = Field(
        default=600.0,
        gt=0,
        description="Seconds one source download may take in all (a source that trickles bytes"
        " under the read timeout fails here), past it by at most the read timeout.",
    )
    max_redirects: int = Field(
        default=MAX_REDIRECTS,
        ge=0,
        le=50,
        description="Redirects a source download follows at most.",
    )
    max_source_seconds: float = Field(
        default=24 * 3600, gt=0, description="Longest source accepted, in seconds."
    )
    max_frames_per_task: int = Field(
        default=100_000, ge=1, description="Most frames (thumbnails and tiles) one task may ask."
    )
    max_output_pixels: int = Field(
        default=64_000_000, ge=1, description="Most pixels of one output image or video frame."
    )
    max_format_pixels: int = Field(
        default=10_000_000_000,
        ge=1,
        description="Most pixels one format may make in all: frames x pixels of each, for a"
        " gif or animated WebP and for a series of thumbnails alike (a 7900x7900 gif of 600"
        " frames is 37.4G).",
    )
    max_source_pixels: int = Field(
        default=40_000_000,
        ge=1,
        description="Most pixels in one frame of a source video (8K is 35.4M): a larger one "
        "fails before any frame is decoded, and so does a stream that grows past it.",
    )
    max_formats: int = Field(default=100, ge=1, description="Most formats in one query.")
    on_demand_source_cache_bytes: int = Field(
        default=2 * 1024**3,
        ge=0,
        description="Bytes of task sources the API keeps on disk for thumbnails on demand "
        "(least recently used out).",
    )
    on_demand_result_cache_bytes: int = Field(
        default=64 * 1024**2,
        ge=0,
        description="Bytes of encoded on-demand thumbnails kept in memory by each API process.",
    )
    on_demand_concurrency: int = Field(
        default_factory=lambda: max(2, os.cpu_count() or 1),
        ge=1,
        description="Frames on demand made at once by each API process (default: its cores, "
        "at least 2), in threads of their own, apart from the Qencode API's.",
    )
    on_demand_queue: int = Field(
        default=32,
        ge=0,
        description="Frames on demand that may wait for a place; past it a request is "
        "answered 503 with Retry-After at once.",
    )
    max_request_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Largest API request body (uploads aside)."
    )
