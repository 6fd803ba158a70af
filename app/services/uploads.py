"""Photo uploads: checked by content (Pillow), size-limited, EXIF stripped, stored outside the code tree.

Phones write the home's GPS position into EXIF, so every image is re-encoded without its
metadata before it is stored. Files go under ``UPLOAD_DIR`` (default ``instance/uploads``);
the database keeps the relative path.
"""
from __future__ import annotations

import io
import uuid
from pathlib import Path

from flask import current_app
from PIL import Image, UnidentifiedImageError

from app.errors import ValidationError
from app.models import utcnow

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000          # refuse decompression bombs before decoding
FORMATS = {"JPEG": ("jpg", "image/jpeg"), "PNG": ("png", "image/png"), "GIF": ("gif", "image/gif")}


def upload_dir() -> Path:
    path = Path(current_app.config.get("UPLOAD_DIR") or Path(current_app.config["INSTANCE_DIR"]) / "uploads")
    path.mkdir(parents=True, exist_ok=True)
    return path


def clean_image(data: bytes) -> tuple[bytes, str, str]:
    """Verify an image by content and re-encode it without metadata; returns (bytes, ext, type).

    Raises ``ValueError`` with a Chinese message for anything that is not a usable image.
    """
    if len(data) > MAX_BYTES:
        raise ValueError("图片超过10MB")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            if probe.width * probe.height > MAX_PIXELS:
                raise ValueError("图片尺寸过大")
            probe.verify()
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValueError("文件不是有效的图片") from exc
    if image.format not in FORMATS:
        raise ValueError(f"不支持的图片格式 {image.format}")
    ext, content_type = FORMATS[image.format]
    out = io.BytesIO()
    if image.format == "JPEG":
        image.convert("RGB").save(out, "JPEG", quality=90)  # no exif= argument: EXIF dropped
    else:
        image.save(out, image.format)
    return out.getvalue(), ext, content_type


def store_image(data: bytes, folder: str | None = None) -> tuple[str, str, int]:
    """Clean and store an uploaded image; returns (relative path, content type, size)."""
    cleaned, ext, content_type = clean_image(data)
    folder = folder or utcnow().strftime("%Y%m")
    name = f"{folder}/{uuid.uuid4().hex}.{ext}"
    target = upload_dir() / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(cleaned)
    return name, content_type, len(cleaned)


def store_uploads(files, *, limit: int = 9, field: str = "photos") -> list[tuple[str, str, int]]:
    """Read, check and store uploaded files (werkzeug FileStorage); all or nothing.

    Each file is read at most ``MAX_BYTES`` + 1 bytes, so an oversized one is refused
    without reading it whole. Stored files of a refused batch are removed again.
    """
    files = [f for f in files if f is not None]
    if len(files) > limit:
        raise ValidationError(f"最多上传{limit}张照片", fields={field: [f"最多上传{limit}张照片"]})
    stored: list[tuple[str, str, int]] = []
    try:
        for index, upload in enumerate(files, start=1):
            data = upload.stream.read(MAX_BYTES + 1)
            try:
                stored.append(store_image(data))
            except ValueError as exc:
                raise ValidationError(f"第{index}张照片：{exc}", fields={field: [f"第{index}张照片：{exc}"]}) from exc
    except Exception:
        remove_stored([path for path, _, _ in stored])
        raise
    return stored


def remove_stored(paths) -> None:
    base = upload_dir()
    for path in paths:
        try:
            (base / path).unlink()
        except OSError:
            pass


def open_stored(path: str) -> Path:
    """The absolute path of a stored upload (never outside the upload directory)."""
    base = upload_dir().resolve()
    target = (base / path).resolve()
    if base not in target.parents:
        raise ValueError("bad upload path")
    return target
