"""The Atlassian Document Format (Jira Cloud's rich text in REST v3) to and from plain text.

``to_adf``: paragraphs split on blank lines, line breaks inside one as ``hardBreak``; a block
fenced with ````` is a ``codeBlock``. ``to_text`` reads any document: paragraphs and headings
(blank line between blocks), hard breaks, mentions (their text), emoji, links and cards
(their URL), bullet and ordered lists (``- ``, ``1. ``), code blocks (fenced), quotes (``> ``),
rules (``---``), tables (cells by ``|``); unknown nodes by their children's text. Plain text
written with ``to_adf`` reads back unchanged (trailing spaces and runs of blank lines aside).
"""

from __future__ import annotations

from typing import Any

FENCE = "```"


def to_adf(text: str) -> dict[str, Any]:
    blocks = [b.strip("\n") for b in text.replace("\r\n", "\n").split("\n\n")]
    content = [_block(b) for b in blocks if b.strip()]
    return {"type": "doc", "version": 1, "content": content}


def _block(block: str) -> dict[str, Any]:
    if block.startswith(FENCE) and block.endswith(FENCE) and len(block) >= 2 * len(FENCE):
        first, _, rest = block.partition("\n")
        code = rest[: -len(FENCE)].rstrip("\n") if rest else ""
        node: dict[str, Any] = {"type": "codeBlock", "content": []}
        language = first[len(FENCE) :].strip()
        if language:
            node["attrs"] = {"language": language}
        if code:
            node["content"] = [{"type": "text", "text": code}]
        return node
    inline: list[dict[str, Any]] = []
    for index, line in enumerate(block.split("\n")):
        if index:
            inline.append({"type": "hardBreak"})
        if line:
            inline.append({"type": "text", "text": line})
    return {"type": "paragraph", "content": inline}


def to_text(document: Any) -> str:
    """The plain text of an ADF document (a ``str`` is returned as it is: Jira Data Center
    and v2 answers carry plain text)."""
    if document is None:
        return ""
    if isinstance(document, str):
        return document
    return _node(document).strip("\n")


def _children(node: dict[str, Any]) -> list[Any]:
    content = node.get("content")
    return content if isinstance(content, list) else []


def _inline(node: dict[str, Any]) -> str:
    return "".join(_node(child) for child in _children(node))


def _node(node: Any) -> str:
    if not isinstance(node, dict):
        return ""
    kind = node.get("type")
    attrs = node.get("attrs") or {}
    if kind == "doc":
        return "\n\n".join(_node(child) for child in _children(node))
    if kind in ("paragraph", "heading"):
        return _inline(node)
    if kind == "text":
        return str(node.get("text", ""))
    if kind == "hardBreak":
        return "\n"
    if kind == "mention":
        return str(attrs.get("text") or f"@{attrs.get('id', '')}")
    if kind == "emoji":
        return str(attrs.get("text") or attrs.get("shortName", ""))
    if kind in ("inlineCard", "blockCard", "embedCard"):
        return str(attrs.get("url", ""))
    if kind == "codeBlock":
        return f"{FENCE}{attrs.get('language', '')}\n{_inline(node)}\n{FENCE}"
    if kind in ("bulletList", "orderedList"):
        start = int(attrs.get("order", 1) or 1)
        lines = []
        for index, item in enumerate(_children(node)):
            mark = f"{start + index}. " if kind == "orderedList" else "- "
            lines.append(mark + "\n".join(_node(c) for c in _children(item)))
        return "\n".join(lines)
    if kind == "blockquote":
        text = "\n\n".join(_node(child) for child in _children(node))
        return "\n".join(f"> {line}" for line in text.split("\n"))
    if kind == "rule":
        return "---"
    if kind == "table":
        return "\n".join(_node(row) for row in _children(node))
    if kind == "tableRow":
        return "| " + " | ".join(_node(cell).replace("\n", " ") for cell in _children(node)) + " |"
    if kind in ("tableCell", "tableHeader", "panel", "expand", "listItem"):
        return "\n".join(_node(child) for child in _children(node))
    return _inline(node)
