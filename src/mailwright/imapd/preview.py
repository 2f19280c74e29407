"""Message previews for FETCH PREVIEW (RFC 8970).

RFC 8970 3.2 leaves the algorithm to the server within these bounds: plain text, at most 256
characters, and the empty string when the message has no text to show.  Ours: the first text
part that is not an attachment (text/plain preferred over text/html in an alternative, since
both say the same), transfer encoding and charset removed, HTML reduced to its text, white
space runs collapsed, cut at 256 characters.  A pure function of the stored message, so the
same message always gets the same preview.
"""

from __future__ import annotations

import html
import re

from mailwright.mime.decode import part_text, text_parts
from mailwright.mime.model import MessageInfo, Part

#: RFC 8970 3.2: "no more than 256 characters"
MAX_CHARS = 256
#: how much of a part is decoded at most: a preview never needs more
_MAX_SOURCE = 64 * 1024

_INVISIBLE = re.compile(r"(?is)<(script|style|head|title)\b.*?</\1\s*>|<!--.*?-->")
_TAG = re.compile(r"(?s)<[^>]*>")
_SPACE = re.compile(r"\s+")


def _is_attachment(p: Part) -> bool:
    return (p.disposition or b"").lower() == b"attachment"


def _subtype(p: Part) -> bytes:
    return (p.subtype or b"plain").lower()


def preview_text(info: MessageInfo, raw: bytes) -> str:
    parts = [p for p in text_parts(info)
             if (p.mtype or b"text").lower() == b"text" and not _is_attachment(p)]
    if not parts:
        return ""
    chosen = next((p for p in parts if _subtype(p) == b"plain"), parts[0])
    if chosen.end - chosen.body_start > _MAX_SOURCE:
        # decode only the start, cut at a line end so base64 and quoted-printable stay whole
        cut = raw.rfind(b"\n", chosen.body_start, chosen.body_start + _MAX_SOURCE)
        raw = raw[: cut + 1] if cut > chosen.body_start else raw
    text = part_text(chosen, raw)
    if _subtype(chosen) == b"html":
        text = html.unescape(_TAG.sub(" ", _INVISIBLE.sub(" ", text)))
    text = _SPACE.sub(" ", text.replace("\x00", " ")).strip()
    return text[:MAX_CHARS]
