"""Text as people type it: one cleaning for every boundary (import, bridge, chat, API, console).

Chinese input methods produce full-width digits and letters (`１３９４０５１２２３４`, `５０１`,
`Ａ座`), the ideographic space (U+3000) and no-break spaces; sheets carry stray spaces and
line breaks. ``clean_text`` folds them with Unicode NFKC and trims/collapses whitespace, so
`５０１` is stored as `501` and matched as `501`.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Any

_SPACES = re.compile(r"[^\S\n]+")        # runs of whitespace other than line breaks
_ALL_SPACES = re.compile(r"\s+")
# Invisible characters pasted from web pages and Word (zero-width space/joiners, BOM).
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")


def clean_text(value: Any, *, multiline: bool = False) -> str:
    """``value`` as NFKC text, invisible characters removed, whitespace trimmed and collapsed.

    One line (default): every run of whitespace (including line breaks) becomes one space.
    ``multiline``: line breaks are kept (trailing spaces of each line dropped), other runs
    of spaces become one. ``None`` becomes ``""``; numbers become their text (``3.0`` → ``3``).
    """
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", str(value)))
    if not multiline:
        return _ALL_SPACES.sub(" ", text).strip()
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return "\n".join(lines).strip("\n")


def clean_optional(value: Any, *, multiline: bool = False) -> str | None:
    """``clean_text``, with ``None`` for what is blank after cleaning."""
    return clean_text(value, multiline=multiline) or None
