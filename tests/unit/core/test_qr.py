"""The pairing code's terminal rendering (hub.qr): two rows of modules per line, light
modules filled, the quiet zone as asked; the CLI's default is segno's standard output."""

from __future__ import annotations

import io

import segno

from hub.qr import qr_terminal

URI = "preloop://pair?url=https%3A%2F%2Fpreloop.example.com&token=plp_3f2a9c0d4e5b6a71_Qm"


def test_the_default_is_segnos_compact_output_with_the_standard_quiet_zone() -> None:
    out = io.StringIO()
    segno.make_qr(URI, error="m").terminal(out=out, compact=True, border=4)
    assert out.getvalue() == qr_terminal(URI)


def test_a_smaller_quiet_zone_gives_a_smaller_code_of_the_same_modules() -> None:
    size = len(segno.make_qr(URI, error="m").matrix)
    standard, small = qr_terminal(URI).splitlines(), qr_terminal(URI, border=2).splitlines()
    assert size + 4 == len(small[0])
    assert (size + 4 + 1) // 2 == len(small)
    assert set(small[0]) == {"█"}  # the quiet zone is light: filled
    # the same code inside (the last line differs: the odd row count is padded there)
    assert [line[2:-2] for line in standard[1 : len(small)]] == small[:-1]
