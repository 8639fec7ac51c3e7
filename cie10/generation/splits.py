"""Train/validation/test by 3-character category, so that near-identical mentions never straddle splits."""

from __future__ import annotations

import functools
import random
from collections import defaultdict

from cie10.catalog import Catalog
from cie10.generation.curation import CurationReport
from cie10.generation.pairs import Pair, normalize_text

SPLITS: tuple[str, ...] = ("train", "validation", "test")


@functools.lru_cache(maxsize=8)
def category_splits(catalog: Catalog, validation_fraction: float, test_fraction: float, seed: int) -> dict[str, str]:
    """`{category: split}` for every category of the catalogue, by systematic sampling within each chapter.

    A chapter's categories, in a seeded order, sit at equal steps on a circle of circumference 1 that starts
    at a seeded random point; one whose position falls in [0, test) goes to test, in [test, test + validation)
    to validation, else to train. It depends only on the catalogue and the seed, not on the rows, so every
    dataset built with the same seed (terminology or LLM, any scope) puts a category in the same split.
    """
    by_chapter: dict[str, list[str]] = defaultdict(list)
    for entry in catalog:
        if entry.kind == "category":
            by_chapter[entry.chapter].append(entry.code)
    assignment: dict[str, str] = {}
    for chapter, categories in sorted(by_chapter.items()):
        rng = random.Random(f"{seed}-{chapter}")
        order = sorted(categories)
        rng.shuffle(order)
        start = rng.random()
        for position, category in enumerate(order):
            point = (start + (position + 0.5) / len(order)) % 1.0
            if point < test_fraction:
                assignment[category] = "test"
            elif point < test_fraction + validation_fraction:
                assignment[category] = "validation"
            else:
                assignment[category] = "train"
    return assignment


def catalog_names(catalog: Catalog) -> set[str]:
    """Every name of every code, normalized: English titles, inclusion terms and labels in every language."""
    names: set[str] = set()
    for entry in catalog:
        names.add(normalize_text(entry.title))
        names.update(normalize_text(term) for term in entry.inclusion_terms)
        names.update(normalize_text(label.text) for label in entry.labels)
    names.discard("")
    return names


def split_pairs(
    pairs: list[Pair],
    catalog: Catalog,
    *,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 42,
    report: CurationReport | None = None,
    names: set[str] | None = None,
) -> dict[str, list[Pair]]:
    """Rows per split; a text that also sits in a held-out split is removed from the later one (`split_leak`).

    With `names` (normalized names of every code, e.g. `catalog_names` plus translated labels) the held-out
    splits are queries only: a name of a held-out category is dropped (`held_out_name`), and a held-out query
    equal to any name or to any training row is dropped (`split_leak`). Names still train.
    """
    assignment = category_splits(catalog, validation_fraction, test_fraction, seed)
    splits: dict[str, list[Pair]] = {split: [] for split in SPLITS}
    for pair in pairs:
        split = assignment.get(pair.category, "train")
        if names is not None and split != "train" and pair.kind == "name":
            if report is not None:
                report.drop("held_out_name", f"a name of a {split} category (held-out splits are queries)", pair)
            continue
        splits[split].append(pair)
    train_texts = {normalize_text(p.query) for p in splits["train"]} if names is not None else set()
    held: set[str] = set()
    for split in ("test", "validation", "train"):
        kept = []
        for pair in splits[split]:
            key = normalize_text(pair.query)
            if split != "train" and names is not None and (key in names or key in train_texts):
                if report is not None:
                    what = "a code name" if key in names else "a training row"
                    report.drop("split_leak", f"{split} query equal to {what}", pair)
                continue
            if split != "test" and key in held:
                if report is not None:
                    report.drop("split_leak", f"{split} text also in a held-out split", pair)
                continue
            kept.append(pair)
        if split != "train":
            held.update(normalize_text(p.query) for p in kept)
        splits[split] = kept
    if report is not None:
        report.output_rows = sum(len(rows) for rows in splits.values())
    return splits
