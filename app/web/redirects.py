"""Where a page may send the browser next: one rule for every ``next`` taken from a request.

Only a path on this site is accepted: it starts with one ``/``, names no scheme or host, has
no backslash, control character (tab, newline, NUL …) or ``.``/``..`` segment — checked on
the value as given and on every percent-decoding of it (``/%09/evil.example`` decodes to a
tab a browser would drop, leaving ``//evil.example``), and after Unicode compatibility
folding (a full-width ``／`` is a ``/`` to some parsers). Anything else is refused, and the
caller falls back to its own page. See OWASP's Unvalidated Redirects and Forwards cheat sheet.
"""
from __future__ import annotations

import unicodedata
from urllib.parse import unquote, urlsplit

MAX_LENGTH = 2048
_DECODE_ROUNDS = 4   # %25-nested encodings deeper than this are refused outright


def safe_next(value: object) -> str | None:
    """``value`` when it is a same-site relative path; otherwise None."""
    if not isinstance(value, str) or not value or len(value) > MAX_LENGTH:
        return None
    forms = [value]
    try:
        for _ in range(_DECODE_ROUNDS):
            decoded = unquote(forms[-1], errors="strict")
            if decoded == forms[-1]:
                break
            forms.append(decoded)
        else:
            return None     # still decoding after that many rounds: nobody links like this
    except UnicodeDecodeError:
        return None
    forms += [unicodedata.normalize("NFKC", form) for form in forms]
    return value if all(_is_local_path(form) for form in forms) else None


def _is_local_path(form: str) -> bool:
    if not form.startswith("/") or form.startswith("//"):
        return False
    if "\\" in form or any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in form):
        return False
    try:
        parts = urlsplit(form)
    except ValueError:
        return False
    if parts.scheme or parts.netloc:
        return False
    return not any(segment in (".", "..") for segment in parts.path.split("/"))
