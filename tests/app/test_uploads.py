"""Photo checks: by content, by size and by pixels — the pixels read from the header,
before anything is decoded (app/services/uploads.py)."""
from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image
from werkzeug.datastructures import FileStorage

from app.errors import PayloadTooLargeError, ValidationError
from app.services import uploads


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that says width×height but carries a few bytes of garbage as its pixels:
    Pillow opens it (the header is fine) and fails as soon as it decodes it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"not pixels") + chunk(b"IEND", b"")


def flat_png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (90, 140, 200)).save(out, "PNG")
    return out.getvalue()


def _files(*blobs):
    return [FileStorage(io.BytesIO(b), filename=f"p{i}.png", content_type="image/png") for i, b in enumerate(blobs)]


def test_header_only_images_are_readable_but_not_decodable():
    """The fixture the tests below rely on: size known, decoding fails."""
    assert uploads.measure_image(png_header_only(6300, 6300)) == ("PNG", 6300, 6300)
    with pytest.raises(ValueError, match="不是有效的图片") as refused:
        uploads.clean_image(png_header_only(640, 480))
    assert not isinstance(refused.value, uploads.ImageTooLarge)


def test_nine_6300_square_photos_are_refused_before_any_is_decoded(app):
    # Each is under the 40 MP limit for one photo; together 357 MP, over the request's budget.
    # Their pixels are garbage: had anything been decoded, the answer would be "not an image".
    with pytest.raises(PayloadTooLargeError) as refused:
        uploads.store_uploads(_files(*[png_header_only(6300, 6300)] * 9))
    assert "照片总尺寸过大" in refused.value.message
    assert refused.value.status == 413 and "photos" in refused.value.fields


def test_one_photo_over_40_megapixels_is_refused_from_its_header(app):
    with pytest.raises(PayloadTooLargeError) as refused:
        uploads.store_uploads(_files(flat_png(64, 64), png_header_only(6400, 6400)))
    assert refused.value.message.startswith("第2张照片：图片尺寸过大（6400×6400")


def test_a_decompression_bomb_header_is_refused_as_too_large_not_as_a_crash(app):
    with pytest.raises(uploads.ImageTooLarge):
        uploads.clean_image(png_header_only(100_000, 100_000))   # Pillow's own bomb check fires first
    with pytest.raises(PayloadTooLargeError):
        uploads.store_uploads(_files(png_header_only(100_000, 100_000)))


def _stored_files() -> set:
    return {p for p in uploads.upload_dir().rglob("*") if p.is_file()}


def test_photos_within_the_budget_are_cleaned_and_stored(db):
    stored = uploads.store_uploads(_files(flat_png(800, 600), flat_png(640, 480)))
    try:
        assert [content_type for _, content_type, _ in stored] == ["image/png", "image/png"]
    finally:
        uploads.remove_stored([path for path, _, _ in stored])


def test_a_bad_file_among_good_ones_is_a_400_and_stores_nothing(db):
    before = _stored_files()
    with pytest.raises(ValidationError) as refused:
        uploads.store_uploads(_files(flat_png(64, 64), b"GIF89a not really"))
    assert refused.value.message.startswith("第2张照片：文件不是有效的图片")
    assert _stored_files() == before


def test_the_photo_job_refuses_a_huge_image_without_decoding_it(app):
    # jobs/media.py stores what the official account receives through clean_image.
    with pytest.raises(uploads.ImageTooLarge):
        uploads.clean_image(png_header_only(8000, 8000))
