"""Photo uploads: checked by content (Pillow), size- and pixel-limited, EXIF stripped, stored outside the code tree.

Limits (README "Limits"): at most ``MAX_PHOTOS`` per request, ``MAX_BYTES`` each (enforced
while the body is parsed, app/http_limits.py), ``MAX_PIXELS`` each and ``MAX_REQUEST_PIXELS``
for all photos of a request — both read from the images' headers, so a request of nine
6300×6300 flat-colour PNGs (a few hundred KB, 1.4 GB once decoded) is refused before a
single one is decoded.

Phones write the home's GPS position into EXIF, so every image is re-encoded without its
metadata before it is stored. Files go under ``UPLOAD_DIR`` (default ``instance/uploads``);
the database keeps the relative path.
"""
from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import BinaryIO

from flask import current_app
from PIL import Image, UnidentifiedImageError

from app.errors import DomainError, PayloadTooLargeError, ValidationError
from app.models import utcnow
from app.services.tickets import PhotoInput

MAX_PHOTOS = 9                   # per request
MAX_BYTES = 10 * 1024 * 1024     # per photo
MAX_REQUEST_BYTES = MAX_PHOTOS * MAX_BYTES + 1024 * 1024   # nine photos and the form around them
MAX_PIXELS = 40_000_000          # per photo (40 MP), checked in the header before decoding
MAX_REQUEST_PIXELS = 150_000_000  # all photos of one request (nine 12 MP phone photos fit)
FORMATS = {"JPEG": ("jpg", "image/jpeg"), "PNG": ("png", "image/png"), "GIF": ("gif", "image/gif")}


def upload_dir() -> Path:
    path = Path(current_app.config["UPLOAD_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    return path


class ImageTooLarge(ValueError):
    """An image over a size or pixel limit (413 at the API; other refusals are 400)."""


def _megapixels(pixels: int) -> str:
    return f"{pixels / 10_000:,.0f}万像素" if pixels < 100_000_000 else f"{pixels / 100_000_000:.2f}亿像素"


def measure_image(source: bytes | BinaryIO) -> tuple[str, int, int]:
    """(format, width, height) read from the image's header — its pixels are not decoded.

    Raises ``ImageTooLarge`` over ``MAX_PIXELS`` (or Pillow's own decompression-bomb limit)
    and ``ValueError`` for anything that is not a JPEG, PNG or GIF.
    """
    fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    start = fp.tell()
    try:
        # Only our three formats' parsers ever see an upload.
        with Image.open(fp, formats=list(FORMATS)) as probe:   # lazy: reads the header only
            fmt, (width, height) = probe.format, probe.size
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"图片尺寸过大（上限{_megapixels(MAX_PIXELS)}）") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValueError("文件不是有效的图片（支持JPEG/PNG/GIF）") from exc
    finally:
        fp.seek(start)
    if width * height > MAX_PIXELS:
        raise ImageTooLarge(f"图片尺寸过大（{width}×{height}，上限{_megapixels(MAX_PIXELS)}）")
    return fmt, width, height


def clean_image(data: bytes) -> tuple[bytes, str, str]:
    """Verify an image by content and re-encode it without metadata; returns (bytes, ext, type).

    Its size and pixel count are checked from the header before anything is decoded. Raises
    ``ValueError`` (``ImageTooLarge`` for the limits) with a Chinese message for anything
    that is not a usable image.
    """
    if len(data) > MAX_BYTES:
        raise ImageTooLarge(f"图片超过{MAX_BYTES // (1024 * 1024)}MB")
    fmt, width, height = measure_image(data)
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as probe:
            probe.verify()
        image = Image.open(io.BytesIO(data), formats=[fmt])
        if image.size != (width, height):
            raise ValueError("image changed between reads")
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ValueError("文件不是有效的图片（支持JPEG/PNG/GIF）") from exc
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


def _refused(index: int, exc: ValueError, field: str) -> DomainError:
    message = f"第{index}张照片：{exc}"
    error = PayloadTooLargeError if isinstance(exc, ImageTooLarge) else ValidationError
    return error(message, fields={field: [message]})


def check_pixel_budget(files, *, field: str = "photos") -> int:
    """Measure every photo of a request from its header and refuse the request, before any
    is decoded, when one is over ``MAX_PIXELS`` or all together over ``MAX_REQUEST_PIXELS``.
    Returns the request's pixel count."""
    total = 0
    for index, upload in enumerate(files, start=1):
        try:
            _, width, height = measure_image(upload.stream)
        except ValueError as exc:
            raise _refused(index, exc, field) from exc
        total += width * height
    if total > MAX_REQUEST_PIXELS:
        message = (f"照片总尺寸过大（{len(files)}张共{_megapixels(total)}，每次上限{_megapixels(MAX_REQUEST_PIXELS)}），"
                   "请减少照片或压缩后重试")
        raise PayloadTooLargeError(message, fields={field: [message]})
    return total


def store_uploads(files, *, limit: int = MAX_PHOTOS, field: str = "photos") -> list[tuple[str, str, int]]:
    """Check and store uploaded files (werkzeug FileStorage); all or nothing.

    First every file is measured from its header (the request's pixel budget), then each is
    read at most ``MAX_BYTES`` + 1 bytes, decoded, cleaned and stored. Stored files of a
    refused batch are removed again.
    """
    files = [f for f in files if f is not None]
    if len(files) > limit:
        raise ValidationError(f"最多上传{limit}张照片", fields={field: [f"最多上传{limit}张照片"]})
    check_pixel_budget(files, field=field)
    stored: list[tuple[str, str, int]] = []
    try:
        for index, upload in enumerate(files, start=1):
            data = upload.stream.read(MAX_BYTES + 1)
            try:
                stored.append(store_image(data))
            except ValueError as exc:
                raise _refused(index, exc, field) from exc
    except Exception:
        remove_stored([path for path, _, _ in stored])
        raise
    return stored


def photo_inputs(files) -> list[PhotoInput]:
    """Check and store a request's photos (``store_uploads``) as the ticket service takes them."""
    return [PhotoInput(path=path, content_type=content_type, size_bytes=size)
            for path, content_type, size in store_uploads(files)]


def commit_or_forget(unit, photos: list[PhotoInput]) -> None:
    """Commit the caller's unit of work (``db.session``); if that fails, remove the files
    stored for this request (a photo row never points at nothing, nor a file at no row)."""
    try:
        unit.commit()
    except Exception:
        unit.rollback()
        remove_stored([p.path for p in photos])
        raise


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


def stored_file(path: str | None) -> Path | None:
    """The file of a stored upload if it is still there; None for a missing file or a path
    outside the upload directory (a page answers 404 either way)."""
    if not path:
        return None
    try:
        target = open_stored(path)
    except ValueError:
        return None
    return target if target.is_file() else None
