"""Output entries in Qencode's wire shape (§5.3, §11.6): what ``images[]``, ``videos[]``,
``audios[]`` and ``texts[]`` say of each stored file, and of a format that failed."""

from __future__ import annotations

from typing import Any

from app.model import Outputs
from app.query import IMAGE_OUTPUTS, FormatSpec
from workers.products import Product
from workers.storage import StoredObject

OUTPUT_ARRAYS = {
    "mp3": "audios",
    "flac": "audios",
    "hls_audio": "audios",
    "speech_to_text": "texts",
}


def _kind(spec: FormatSpec) -> tuple[str, str]:
    """(tag prefix, array name) for a format."""
    if spec.output in IMAGE_OUTPUTS:
        return "image", "images"
    array = OUTPUT_ARRAYS.get(spec.output, "videos")
    return array[:-1], array


def add_stored(
    outputs: Outputs, spec: FormatSpec, products: list[Product], stored: list[StoredObject]
) -> None:
    prefix, array = _kind(spec)
    entries: list[dict[str, Any]] = getattr(outputs, array)
    tag = f"{prefix}-{spec.index}-"
    first = sum(1 for e in entries if str(e.get("tag", "")).startswith(tag))
    for j, (product, obj) in enumerate(zip(products, stored, strict=True), start=first):
        entry: dict[str, Any] = {
            "url": obj.url,
            "tag": f"{tag}{j}",
            "user_tag": spec.user_tag,
            "profile": None,
            "storage": obj.storage,
        }
        if prefix == "image":
            entry.update(
                type=product.kind, width=product.width, height=product.height, size=product.size
            )
            if product.time is not None:
                entry["time"] = round(product.time, 6)
        else:
            duration = product.duration or 0.0
            entry.update(
                status="completed",
                percent="100",
                error=0,
                error_description=None,
                # Qencode reports video sizes in MB and bitrates in kbit/s.
                size=round(product.size / 1_000_000, 6),
                duration=f"{duration:.3f}",
                bitrate=round(product.size * 8 / 1000 / duration) if duration else None,
                meta=product.meta or {"width": product.width, "height": product.height},
            )
        entries.append(entry)


def add_failed(outputs: Outputs, spec: FormatSpec, description: str) -> None:
    prefix, array = _kind(spec)
    tag = f"{prefix}-{spec.index}-0"
    getattr(outputs, array).append(
        {
            "url": None,
            "tag": tag,
            "user_tag": spec.user_tag,
            "profile": None,
            "storage": None,
            "status": "error",
            "error": 1,
            "error_description": description,
        }
    )
    outputs.warnings.append(
        {"message": f"format {spec.index} ({spec.output}) failed", "details": description,
         "tag": tag}
    )  # fmt: skip
