"""Rendering helpers shared by the card builders: Jinja templates through `huggingface_hub`, markdown utilities."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

from huggingface_hub import CardData, RepoCard

TEMPLATES = Path(__file__).with_name("templates")
"""Jinja templates of the cards' prose; the YAML header is always `{{ card_data }}` from a `CardData`."""

CardT = TypeVar("CardT", bound=RepoCard)

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6}) ")
_COMMENT = re.compile(r"<!--.*?-->[ \t]*\n?", re.S)


def render(card_class: type[CardT], card_data: CardData, template: str, **values: Any) -> CardT:
    """A card from `templates/<template>`: header from `card_data` (never hand-written YAML), prose from values."""
    card = card_class.from_template(card_data, template_path=str(TEMPLATES / template), **values)
    text = re.sub(r"\n{3,}", "\n\n", card.content).strip() + "\n"
    return card_class(text)


def split_sections(markdown: str) -> tuple[str, list[tuple[str, str]]]:
    """(text before the first `## ` heading, [(heading title, section text including the heading)])."""
    preamble: list[str] = []
    sections: list[tuple[str, list[str]]] = []
    in_fence = False
    for line in markdown.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        if not in_fence and line.startswith("## "):
            sections.append((line[3:].strip(), [line]))
        elif sections:
            sections[-1][1].append(line)
        else:
            preamble.append(line)
    return "\n".join(preamble), [(title, "\n".join(lines).rstrip()) for title, lines in sections]


def strip_comments(markdown: str) -> str:
    """The markdown without HTML comments (template placeholders); code blocks are left alone."""
    chunks = re.split(r"(^```.*?^```[^\n]*$)", markdown, flags=re.M | re.S)
    cleaned = [chunk if chunk.startswith("```") else _COMMENT.sub("", chunk) for chunk in chunks]
    return re.sub(r"\n{3,}", "\n\n", "".join(cleaned))


def has_content(section: str) -> bool:
    """Whether a section holds more than headings and blank lines."""
    return any(line.strip() and not _HEADING.match(line) for line in section.splitlines())


def demote_headings(markdown: str, levels: int = 1) -> str:
    """Every heading `levels` deeper (`## A` → `### A`), code blocks left alone."""
    out = []
    in_fence = False
    for line in markdown.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else _HEADING.match(line)
        if match:
            depth = min(6, len(match.group(1)) + levels)
            line = "#" * depth + line[len(match.group(1)) :]
        out.append(line)
    return "\n".join(out)


def bullet_list(items: list[str], empty: str = "none") -> str:
    """`- item` lines (or `- none`)."""
    return "\n".join(f"- {item}" for item in items) if items else f"- {empty}"


def cell(text: object, limit: int = 70) -> str:
    """Text made safe for a markdown table cell, shortened to `limit` characters."""
    value = str(text).replace("|", "\\|").replace("\n", " ").strip()
    return value if len(value) <= limit else value[: limit - 3] + "..."
