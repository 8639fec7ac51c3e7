"""Prompts grounded in the hierarchy: a code, its title, parent and siblings, from a versioned template file.

Templates are YAML files under `cie10/generation/prompts/` (`mentions-v1.yaml`, ...) with `version`, `system`
and `user` texts whose `$placeholders` are filled here. The reply must follow `MentionsReply`, the JSON schema
the LLM backends send as structured output.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, Field

from cie10 import LANGUAGE_NAMES
from cie10.catalog import Catalog
from cie10.errors import ConfigError

TEMPLATES_DIR = Path(__file__).parent / "prompts"


class HardNegative(BaseModel):
    """A sibling code a coder could confuse with the mentions, and why."""

    code: str = Field(description="a sibling code from the prompt's list")
    reason: str = Field(description="why it is plausible but wrong, in a few words")


class MentionsReply(BaseModel):
    """The structured reply of the LLM for one (code, language) prompt."""

    mentions: list[str] = Field(description="clinical mentions of the target code in the target language")
    hard_negatives: list[HardNegative] = Field(description="plausible but wrong sibling codes")


@dataclass(frozen=True)
class Task:
    """Write `n` mentions of `code` in `language`."""

    code: str
    language: str
    n: int


@dataclass(frozen=True)
class Prompt:
    """A rendered prompt for one task, with the template version it came from."""

    task: Task
    system: str
    user: str
    template_version: str
    siblings: tuple[str, ...]


@dataclass(frozen=True)
class Template:
    """A loaded prompt template file."""

    version: str
    system: str
    user: str
    path: Path


def load_template(name_or_path: str) -> Template:
    """A template by name (`mentions-v1`, under `cie10/generation/prompts/`) or by file path."""
    path = Path(name_or_path).expanduser()
    if not path.suffix:
        path = TEMPLATES_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in TEMPLATES_DIR.glob("*.yaml")))
        raise ConfigError(f"prompt template {name_or_path!r} not found (known: {known})")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    missing = [key for key in ("version", "system", "user") if not data.get(key)]
    if missing:
        raise ConfigError(f"prompt template {path} lacks {', '.join(missing)}")
    return Template(str(data["version"]), str(data["system"]).strip(), str(data["user"]).strip(), path)


_ALONE = re.compile(r"\$(?:(\w+)|\{(\w+)\})")


def _lines(items: list[str], empty: str) -> str:
    return "\n".join(items) if items else empty


def render_prompt(
    catalog: Catalog, task: Task, template: Template, *, max_siblings: int = 12, max_negatives: int = 5
) -> Prompt:
    """The prompt for `task`: the code, its English title (and own label in the language), path, parent, siblings."""
    entry = catalog[task.code]
    siblings = catalog.siblings(entry.code)
    shown = siblings[:max_siblings]
    sibling_lines = [f"- {code}: {catalog[code].title}" for code in shown]
    if len(siblings) > len(shown):
        sibling_lines.append(f"- (and {len(siblings) - len(shown)} more)")
    parent = catalog[entry.parent] if entry.parent else None
    own = entry.own_labels(task.language) if task.language != "en" else []
    language_name = LANGUAGE_NAMES[task.language]
    values = {
        "code": entry.code,
        "title": entry.title,
        "own_label_line": f"Official {language_name} label: {own[0].text}" if own else "",
        "path": " > ".join(f"{code} {catalog[code].title}" for code in catalog.path(entry.code)[:-1]),
        "parent": f"{parent.code} {parent.title}" if parent else "(none)",
        "inclusion_block": ("Inclusion terms: " + "; ".join(entry.inclusion_terms) if entry.inclusion_terms else ""),
        "siblings_block": _lines(sibling_lines, "(none)"),
        "n": str(task.n),
        "language": task.language,
        "language_name": language_name,
        "max_negatives": str(max_negatives),
    }
    # a line holding only a placeholder whose value is empty disappears
    lines = [
        line
        for line in template.user.splitlines()
        if not ((m := _ALONE.fullmatch(line.strip())) and not values.get(m.group(1) or m.group(2), "x"))
    ]
    try:
        user = string.Template("\n".join(lines)).substitute(values)
    except (KeyError, ValueError) as error:
        raise ConfigError(f"prompt template {template.path}: bad placeholder {error}") from error
    return Prompt(task, template.system, user.strip(), template.version, tuple(shown))
