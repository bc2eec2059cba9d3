"""What an embedder reads of an issue or a draft."""

from __future__ import annotations

from hub.search.text import MAX_CHARS, draft_text, issue_text
from tests.unit.search.world import issue


def test_the_title_a_blank_line_and_the_body() -> None:
    assert "Login fails\n\nAfter the upgrade." == issue_text(
        issue(1, "Login fails", "After the upgrade.")
    )


def test_a_draft_without_description_is_its_title() -> None:
    assert "Login fails" == draft_text(" Login fails ", "  ")


def test_long_text_is_capped() -> None:
    text = draft_text("t", "x" * 20_000)

    assert MAX_CHARS == len(text) == 8_000
    assert text.startswith("t\n\nxxx")
