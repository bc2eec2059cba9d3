"""QR codes as terminal text: half-block characters, two rows of modules per line.

One pure function shared by the CLI (``preloop devices pair``) and the dashboard's Devices
screen; segno is a small pure-Python library, so the core may use it. The characters assume a
light foreground on a dark background (a *light* module is drawn, a dark one is blank), as
segno's ``compact`` writer does: a caller that controls colours (the dashboard) draws the
text white on black, so the code reads the same in light and dark themes.
"""

from __future__ import annotations

import io

import segno

ERROR_LEVEL = "m"  # the pairing URI's error correction, for every rendering of it


def qr_code(text: str) -> segno.QRCode:
    return segno.make_qr(text, error=ERROR_LEVEL)


def qr_terminal(text: str, *, border: int = 4) -> str:
    """Half-block text for a terminal (two rows of modules per line); ``border`` is the quiet
    zone in modules (4 is the standard's; 2 still scans with phone cameras)."""
    out = io.StringIO()
    qr_code(text).terminal(out=out, compact=True, border=border)
    return out.getvalue()
