"""QR scenes are written and read in one place (wechat/qr.py); images are drawn in one place
(app/qrcodes.py) for pages (SVG), files and the mini-program (PNG) and the terminal (text)."""
import base64

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
