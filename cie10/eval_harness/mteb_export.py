"""Export an evaluation set in MTEB's retrieval layout, so the same set runs with `mteb` (not a dependency).

Per language, BEIR files as mteb's retrieval loader reads them:

    <out>/<lang>/corpus.jsonl      {"_id": code, "title": "", "text": English ICD-10-CM title}
    <out>/<lang>/queries.jsonl     {"_id": query id, "text": query}
    <out>/<lang>/qrels/<split>.tsv query-id <TAB> corpus-id <TAB> score (1 for each gold code)
    <out>/<lang>/qrels/<split>.jsonl the same rows as JSON lines (what the card's `-qrels` config reads)

plus a dataset card whose `configs` (`<lang>-corpus`, `<lang>-queries`, `<lang>-qrels`) make the folder (or the
Hub dataset it is published as) loadable with `datasets`, and `task_metadata.json` (languages in mteb's
`eng-Latn` form, main score, source dataset and revision, searched codes). Gold codes outside the corpus stay in
the qrels, so they count as misses there too.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cie10.catalog import Catalog
from cie10.code_index import document_text
from cie10.eval_harness.data import LANGUAGE_TAGS, EvalSet, EvaluationInputError
from cie10.eval_harness.results import write_text_atomic

logger = logging.getLogger(__name__)

METADATA_FILE = "task_metadata.json"


def _jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def _card(name: str, languages: list[str], split: str, metadata: dict[str, Any]) -> str:
    lines = ["---", "language:"] + [f"- {language}" for language in languages]
    lines += [
        "task_categories:",
        "- text-retrieval",
        "task_ids:",
        "- document-retrieval",
        "tags:",
        "- mteb",
        "- icd-10",
        "configs:",
    ]
    for language in languages:
        for part, split_name, path in (
            ("corpus", "corpus", f"{language}/corpus.jsonl"),
            ("queries", "queries", f"{language}/queries.jsonl"),
            ("qrels", split, f"{language}/qrels/{split}.jsonl"),
        ):
            lines += [
                f"- config_name: {language}-{part}",
                "  data_files:",
                f"  - split: {split_name}",
                f"    path: {path}",
            ]
    source = metadata["dataset"]
    lines += [
        "---",
        "",
        f"# {name} (MTEB retrieval layout)",
        "",
        f"Exported by `cie10 evaluate export-mteb` from `{source.get('id') or source.get('path')}` "
        f"(revision `{source.get('revision') or 'local'}`, split `{split}`). The corpus is the "
        f"{metadata['corpus']['num_codes']} ICD-10-CM codes of scope `{metadata['corpus']['scope']}`, each as its "
        "English title; the queries and relevance judgements are per language.",
        "",
        "| language | queries | qrels | gold codes outside the corpus |",
        "|---|---|---|---|",
    ]
    for language in languages:
        stats = metadata["languages"][language]
        lines.append(f"| {language} | {stats['queries']} | {stats['qrels']} | {stats['gold_outside_corpus']} |")
    return "\n".join(lines) + "\n"


def export_mteb(
    eval_set: EvalSet,
    catalog: Catalog,
    codes: Sequence[str],
    out: Path | str,
    *,
    name: str = "CIE10Retrieval",
    scope: str = "",
) -> Path:
    """Write the set under `out` in MTEB/BEIR retrieval layout, one folder per language; returns `out`."""
    out = Path(out)
    split = eval_set.source.get("split") or "test"
    if len(set(eval_set.ids)) != len(eval_set.ids):
        duplicated = next(qid for qid, count in Counter(eval_set.ids).items() if count > 1)
        raise EvaluationInputError(f"query ids must be unique for qrels; {duplicated!r} appears more than once")
    corpus = _jsonl([{"_id": code, "title": "", "text": document_text(catalog[code])} for code in codes])
    in_corpus = set(codes)
    languages = eval_set.language_list()
    per_language: dict[str, Any] = {}
    for language in languages:
        rows = [i for i, lang in enumerate(eval_set.languages) if lang == language]
        queries = _jsonl([{"_id": eval_set.ids[i], "text": eval_set.queries[i]} for i in rows])
        qrels = [(eval_set.ids[i], code) for i in rows for code in eval_set.gold[i]]
        folder = out / language
        write_text_atomic(folder / "corpus.jsonl", corpus)
        write_text_atomic(folder / "queries.jsonl", queries)
        tsv = "".join(f"{qid}\t{code}\t1\n" for qid, code in qrels)
        write_text_atomic(folder / "qrels" / f"{split}.tsv", "query-id\tcorpus-id\tscore\n" + tsv)
        write_text_atomic(
            folder / "qrels" / f"{split}.jsonl",
            _jsonl([{"query-id": qid, "corpus-id": code, "score": 1} for qid, code in qrels]),
        )
        per_language[language] = {
            "queries": len(rows),
            "qrels": len(qrels),
            "gold_outside_corpus": sum(1 for i in rows for code in eval_set.gold[i] if code not in in_corpus),
        }
    metadata = {
        "name": name,
        "type": "Retrieval",
        "category": "t2t",
        "modalities": ["text"],
        "eval_splits": [split],
        "eval_langs": {language: [LANGUAGE_TAGS.get(language, language)] for language in languages},
        "main_score": eval_set.main_score,
        "dataset": {key: eval_set.source.get(key) for key in ("id", "path", "revision", "config", "split")},
        "corpus": {"catalog_version": catalog.version, "scope": scope, "num_codes": len(codes)},
        "languages": per_language,
        "layout": "BEIR per language: <lang>/corpus.jsonl, <lang>/queries.jsonl, <lang>/qrels/<split>.tsv (+ .jsonl)",
    }
    write_text_atomic(out / METADATA_FILE, json.dumps(metadata, indent=2, ensure_ascii=False) + "\n")
    write_text_atomic(out / "README.md", _card(name, languages, split, metadata))
    logger.info("exported %d queries in %d languages to %s", len(eval_set), len(languages), out)
    return out
