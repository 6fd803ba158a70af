"""Text as people type it: one cleaning for every boundary (import, bridge, chat, API, console).

Chinese input methods produce full-width digits and letters (`１３９４０５１２２３４`, `５０１`,
`Ａ座`), the ideographic space (U+3000) and no-break spaces; sheets carry stray spaces and
line breaks. ``clean_text`` folds them with Unicode NFKC and trims/collapses whitespace, so
`５０１` is stored as `501` and matched as `501`.

Prose (``multiline=True``: descriptions, chat messages) keeps its Chinese punctuation — NFKC
would turn `，` into `,` and `（` into `(` — and folds only full-width letters, digits and
spaces, so `绑定 １０１００００１ ３９４０` still reads as `绑定 10100001 3940`.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Any

_SPACES = re.compile(r"[^\S\n]+")        # runs of whitespace other than line breaks
_ALL_SPACES = re.compile(r"\s+")
# Invisible characters pasted from web pages and Word (zero-width space/joiners, BOM).
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")
# Full-width digits and Latin letters -> ASCII (for prose, which keeps Chinese punctuation).
_FULL_WIDTH_ALNUM = {code: code - 0xFEE0 for start, end in ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A))
                     for code in range(start, end + 1)}


def clean_text(value: Any, *, multiline: bool = False) -> str:
    """``value`` as NFKC text, invisible characters removed, whitespace trimmed and collapsed.

    One line (default): every run of whitespace (including line breaks) becomes one space.
    ``multiline`` (prose): line breaks are kept (trailing spaces of each line dropped), other
    runs of spaces become one, and only full-width letters and digits are folded (Chinese
    punctuation stays). ``None`` becomes ``""``; numbers become their text (``3.0`` → ``3``).
    """
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not multiline:
        text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", str(value)))
        return _ALL_SPACES.sub(" ", text).strip()
    text = _INVISIBLE.sub("", str(value).translate(_FULL_WIDTH_ALNUM))
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return "\n".join(lines).strip("\n")


def clean_optional(value: Any, *, multiline: bool = False) -> str | None:
    """``clean_text``, with ``None`` for what is blank after cleaning."""
    return clean_text(value, multiline=multiline) or None
