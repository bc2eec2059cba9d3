"""QR codes of pairing URIs (segno: pure Python; PNG and SVG without Pillow)."""

from __future__ import annotations

import io

import segno


def _code(text: str) -> segno.QRCode:
    return segno.make_qr(text, error="m")


def qr_terminal(text: str) -> str:
    """Half-block text for a terminal (two rows of modules per line)."""
    out = io.StringIO()
    _code(text).terminal(out=out, compact=True)
    return out.getvalue()


def qr_png(text: str, *, scale: int = 8) -> bytes:
    out = io.BytesIO()
    _code(text).save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


def qr_svg(text: str, *, scale: int = 8) -> str:
    out = io.BytesIO()
    _code(text).save(out, kind="svg", scale=scale, border=4, xmldecl=False)
    return out.getvalue().decode("utf-8")
