"""QR scenes are written and read in one place (wechat/qr.py); images are drawn in one place
(app/qrcodes.py) for pages (SVG), files and the mini-program (PNG) and the terminal (text)."""
import base64
import io
import re

from PIL import Image

from app import qrcodes
from wechat import qr


def test_scenes_read_back_as_they_were_written():
    assert qr.parse_scene(qr.household_scene("10100001")) == ("household", "10100001")
    assert qr.parse_scene(qr.staff_scene("Ab3-x")) == ("staff", "Ab3-x")
    assert qr.parse_scene("promo:winter") is None and qr.parse_scene("") is None


def test_one_drawing_in_every_format():
    link = "https://heat.example.cn/r/PAY-1"
    assert qrcodes.png(link).startswith(b"\x89PNG\r\n\x1a\n")
    assert base64.b64decode(qrcodes.png_data_url(link).removeprefix("data:image/png;base64,")).startswith(b"\x89PNG")
    svg = qrcodes.svg(link)
    assert svg.startswith("<svg") and "<path" in svg
    lines = qrcodes.text(link).splitlines()
    assert len(lines) > 10 and len({len(line) for line in lines if line}) == 1   # a square of blocks


def _svg_modules(svg: str) -> set[tuple[int, int]]:
    runs = re.findall(r"M(\d+) (\d+)h(\d+)v1H\d+z", svg.split("<path", 2)[2])
    return {(x + dx, int(y)) for x, y, w in ((int(a), b, int(c)) for a, b, c in runs) for dx in range(w)}


def test_the_page_svg_draws_the_same_code_as_the_png_and_stays_light():
    link = "http://127.0.0.1:5000/pay/receipt/PAY20261202101500123456?sig=0123456789abcdef0123456789abcdef"
    image = Image.open(io.BytesIO(qrcodes.png(link, box_size=1))).convert("1")
    dark = {(x, y) for y in range(image.height) for x in range(image.width) if not image.getpixel((x, y))}
    svg = qrcodes.svg(link)
    assert f'viewBox="0 0 {image.width} {image.width}"' in svg
    assert _svg_modules(svg) == dark
    assert len(svg) < 8000     # a run per row segment, not a square per module (was ≈ 20 KB)
