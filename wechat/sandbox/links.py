"""Text links to the mini-program inside a text message, as the WeChat client reads them.

WeChat (customer-service and passive text messages) opens the mini-program from
``<a data-miniprogram-appid="APPID" data-miniprogram-path="pages/...">…</a>``; the appid must
be a mini-program bound to the official account. Without the appid the client does not open
the mini-program: it follows ``href`` when there is one, else shows the words as plain text.
WeChat accepts such a message all the same, so the sandbox flags it instead of refusing it.
"""
from __future__ import annotations

import html
import re

A_TAG = re.compile(r"<a\b([^>]*)>(.*?)</a>", re.S | re.I)
ATTRIBUTE = re.compile(r"""([\w:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def _attributes(raw: str) -> dict[str, str]:
    return {m.group(1).lower(): html.unescape(m.group(2) if m.group(2) is not None else m.group(3))
            for m in ATTRIBUTE.finditer(raw)}


def miniprogram_links(content: str) -> list[dict]:
    """Each <a> that means to open a mini-program: its words, appid, path and href."""
    found = []
    for raw, label in A_TAG.findall(content or ""):
        attrs = _attributes(raw)
        if "data-miniprogram-path" in attrs or "data-miniprogram-appid" in attrs:
            found.append({"text": label, "appid": attrs.get("data-miniprogram-appid") or None,
                          "path": attrs.get("data-miniprogram-path"), "href": attrs.get("href")})
    return found


def text_link_flags(sb, content: str) -> list[str]:
    """What the WeChat client would get wrong about the mini-program links in `content`."""
    flags = []
    for link in miniprogram_links(content):
        if not link["appid"]:
            shown = f"opens {link['href']} instead" if link["href"] else "is shown as plain text"
            flags.append(f"mini-program link {link['text']!r} has no data-miniprogram-appid: "
                         f"WeChat does not open the mini-program, the link {shown}")
        elif link["appid"] != sb.config["mp_appid"]:
            flags.append(f"mini-program link {link['text']!r}: data-miniprogram-appid {link['appid']} is not "
                         f"the mini-program bound to this official account ({sb.config['mp_appid']})")
    return flags
