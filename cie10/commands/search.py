"""`cie10 search`: ranked codes for a query, or for a whole clinical note, in the terminal.

The Space's models, index and options (`cie10.space_app.SpaceBackend`), without a browser:

    cie10 search "dolor torácico opresivo" "fractura del coll del fèmur" --revision v3.0
    cie10 search --note informe.txt           # every sentence and clause, each code once with its passage
    cie10 search "asthma attack" --json       # the Space API's payload, one JSON object per line

The models load once per call (tens of seconds on CPU); for many queries pass them together, or use a batch
in the Space (`cie10 serve`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from cie10.commands.serve import add_space_options, load_space_backend
from cie10.errors import ConfigError

logger = logging.getLogger(__name__)


def _read_note(path: str) -> str:
    """The note's text from a file, or from stdin for `-`; one clear error when it cannot be read."""
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read the note {path}: {error}") from error


def format_result(payload: dict[str, Any], heading: str) -> str:
    """A search or note payload as plain text: a heading line, then one line per ranked code (a title inherited
    from an ancestor with the code's own English one; for a note, the passage that found it and its negation
    word)."""
    stages = "bi-encoder + reranker" if payload["reranked"] else "bi-encoder"
    lines = [f"{heading}  ({payload.get('language') or 'language unknown'}; {stages})"]
    for hit in payload["hits"]:
        score = f"{hit['score']:.3f}" + ("" if hit["rerank_score"] is None else f"  rerank {hit['rerank_score']:.3f}")
        title = hit["title"] + (f" (ancestor's label; en: {hit['english_title']})" if hit["title_inherited"] else "")
        line = f"{hit['rank']:>3}  {hit['code']:<8} {title}  [{score}]"
        if "segment" in hit:
            line += f"\n       ← {hit['segment']}" + (f"  (negation: {hit['negation']})" if hit["negation"] else "")
        lines.append(line)
    if not payload["hits"]:
        lines.append("  no results")
    return "\n".join(lines)


def _search(args: argparse.Namespace) -> int:
    if bool(args.queries) == bool(args.note):
        raise ConfigError("give one or more queries, or --note FILE (not both)")
    from cie10.space_app import validate_query

    note = _read_note(args.note) if args.note else None
    for query in args.queries:  # before the models load: an empty query fails at once
        validate_query(query)
    if note is not None and not note.strip():
        raise ConfigError(f"the note {args.note} is empty")
    backend = load_space_backend(args)
    options = {
        "top_k": args.top_k,
        "rerank": False if args.no_reranker else None,  # None: the Space's default (reranker on when it helps)
        "billable_only": args.billable_only,
        "chapter": args.chapter,
        "display_language": args.language,
    }
    if note is not None:
        results = [(args.note, backend.search_note(note, **options))]
    else:
        results = [(query, backend.search(query, rerank_top=args.rerank_top, **options)) for query in args.queries]
    for heading, payload in results:
        for warning in payload["warnings"]:
            logger.warning("%s: %s", heading, warning)
        print(json.dumps(payload, ensure_ascii=False) if args.json else format_result(payload, heading), flush=True)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `search` subcommand."""
    parser = subparsers.add_parser(
        "search",
        help="ranked codes for queries or a clinical note, in the terminal (the Space's models)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("queries", nargs="*", help="clinical phrases, in any of en, es, ca, it, pt, fr")
    parser.add_argument("--note", help="a clinical note (text file, or - for stdin), searched passage by passage")
    parser.add_argument("--top-k", type=int, default=10, help="codes per query (1-100, default 10)")
    parser.add_argument("--rerank-top", type=int, default=20, help="codes the reranker reorders (default 20)")
    parser.add_argument("--billable-only", action="store_true", help="billable codes only")
    parser.add_argument("--chapter", default="all", help="restrict to a chapter, e.g. 9 (default all)")
    parser.add_argument(
        "--language", default="auto", help="language of the titles shown: en, es, ca, it, pt, fr or auto (default)"
    )
    add_space_options(parser)
    parser.add_argument("--json", action="store_true", help="the Space API's payload, one JSON object per line")
    parser.set_defaults(func=_search)
