"""QR codes of pairing URIs (segno: pure Python; PNG and SVG without Pillow). The terminal
rendering lives in :mod:`hub.qr`, shared with the dashboard."""

from __future__ import annotations

import io

from hub.qr import qr_code as _code
from hub.qr import qr_terminal

__all__ = ["qr_png", "qr_svg", "qr_terminal"]


def qr_png(text: str, *, scale: int = 8) -> bytes:
    out = io.BytesIO()
    _code(text).save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


def qr_svg(text: str, *, scale: int = 8) -> str:
    out = io.BytesIO()
    _code(text).save(out, kind="svg", scale=scale, border=4, xmldecl=False)
    return out.getvalue().decode("utf-8")
