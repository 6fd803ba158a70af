"""QR images, drawn in one place (``qrcode``): SVG for pages, PNG for files and the mini-program,
text for the terminal. What a QR says (a WeChat scene URL, a page link) is the caller's."""
from __future__ import annotations

import base64
import io

import qrcode
from qrcode.image.pil import PilImage

BORDER = 2   # modules of quiet zone around the code (scanners need some; 4 is the standard's ideal)


def svg(data: str, box_size: int = 8) -> str:
    """The ``<svg>`` element (no XML prologue), to put inside a page: one path of horizontal
    runs in module units, a third of the size of qrcode's per-module path (receipts, work orders)."""
    qr = qrcode.QRCode(border=BORDER)
    qr.add_data(data)
    qr.make(fit=True)
    matrix = qr.get_matrix()
    n = len(matrix)
    runs = []
    for y, row in enumerate(matrix):
        x = 0
        while x < n:
            if not row[x]:
                x += 1
                continue
            start = x
            while x < n and row[x]:
                x += 1
            runs.append(f"M{start} {y}h{x - start}v1H{start}z")
    side = f"{n * box_size / 10:g}mm"      # box_size tenths of a millimetre per module, as qrcode's SVG
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {n} {n}" width="{side}" height="{side}" '
            f'shape-rendering="crispEdges"><path fill="#fff" d="M0 0h{n}v{n}H0z"/>'
            f'<path d="{"".join(runs)}"/></svg>')


def png(data: str, box_size: int = 8) -> bytes:
    image = qrcode.make(data, image_factory=PilImage, box_size=box_size, border=BORDER)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def png_data_url(data: str, box_size: int = 6) -> str:
    """A ``data:image/png;base64,…`` URL (the mini-program shows it in an <image>)."""
    return "data:image/png;base64," + base64.b64encode(png(data, box_size)).decode()


def text(data: str) -> str:
    """The code in block characters, for a terminal (light on dark)."""
    qr = qrcode.QRCode(border=1)
    qr.add_data(data)
    out = io.StringIO()
    qr.print_ascii(out=out, invert=True)
    return out.getvalue()
