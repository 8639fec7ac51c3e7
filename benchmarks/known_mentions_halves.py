"""How far known mentions carry, measured on CodiEsp **train** alone (dev is never read): its documents shuffled
(seed 0) and split in two halves; the first half's coded mentions are the table, the second half's are the queries.

Prints, as JSON, for verbatim matches (normalised text), loose matches (`cie10.known_mentions.loose_key`) and a
containment rule left out of the product (the longest known mention of two or more words whose words are all in
the query): how many queries each covers and how often the table's most frequent code is right (Acc@1) or among
its codes. docs/training.md ("Known mentions") quotes it.

    python -m benchmarks.known_mentions_halves [--codiesp ../shared/data/codiesp]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cie10.generation.codiesp_source import CodiespMention, codiesp_root, read_train_mentions
from cie10.generation.pairs import normalize_text
from cie10.known_mentions import loose_key

Table = dict[str, Counter]


def halves(mentions: Sequence[CodiespMention], seed: int = 0) -> tuple[list[CodiespMention], list[CodiespMention]]:
    """(table half, query half): the mentions of a random half of the documents, and of the others."""
    documents = sorted({mention.article for mention in mentions})
    random.Random(seed).shuffle(documents)
    first = set(documents[: len(documents) // 2])
    return [m for m in mentions if m.article in first], [m for m in mentions if m.article not in first]


def table_of(mentions: Sequence[CodiespMention], key: Callable[[str], str]) -> Table:
    """key(text) -> code -> times given."""
    table: Table = defaultdict(Counter)
    for mention in mentions:
        table[key(mention.text)][mention.code] += 1
    return table


def scored(covered: list[tuple[CodiespMention, Counter]], queries: int) -> dict[str, Any]:
    """Coverage, Acc@1 of the most frequent code, and the share whose code is among the table's codes."""
    hits = len(covered)
    return {
        "covered": hits,
        "share_of_queries": round(hits / queries, 4) if queries else None,
        "acc_at_1": round(sum(c.most_common(1)[0][0] == m.code for m, c in covered) / hits, 4) if hits else None,
        "among_codes": round(sum(m.code in c for m, c in covered) / hits, 4) if hits else None,
    }


def measure(mentions: Sequence[CodiespMention], seed: int = 0) -> dict[str, Any]:
    """The three rules on one split of the documents."""
    table_half, query_half = halves(mentions, seed)
    verbatim, loose = table_of(table_half, normalize_text), table_of(table_half, loose_key)
    found_verbatim = [(m, verbatim[normalize_text(m.text)]) for m in query_half if normalize_text(m.text) in verbatim]
    beyond = [
        (m, loose[loose_key(m.text)])
        for m in query_half
        if normalize_text(m.text) not in verbatim and loose_key(m.text) and loose_key(m.text) in loose
    ]
    keys = [(set(key.split()), key) for key in loose if len(key.split()) >= 2]
    contained = []
    for mention in query_half:
        if loose_key(mention.text) in loose:
            continue
        words = set(loose_key(mention.text).split())
        inside = [key for key_words, key in keys if key_words < words]
        if inside:
            contained.append((mention, loose[max(inside, key=lambda key: len(key.split()))]))
    queries = len(query_half)
    return {
        "seed": seed,
        "table_mentions": len(table_half),
        "queries": queries,
        "verbatim": scored(found_verbatim, queries),
        "loose_beyond_verbatim": scored(beyond, queries),
        "containment_beyond_loose": scored(contained, queries),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.known_mentions_halves", description=__doc__)
    parser.add_argument("--codiesp", type=Path, default=None, help="CodiEsp folder holding train/trainX.tsv")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    mentions = read_train_mentions(args.codiesp or codiesp_root())
    sys.stdout.write(json.dumps(measure(mentions, args.seed), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
