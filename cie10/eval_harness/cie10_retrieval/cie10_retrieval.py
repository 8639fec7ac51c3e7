"""cie10_retrieval: ranking metrics for ICD-10-CM / CIE-10 code retrieval, as an `evaluate` module.

Per query: the ranked predicted codes, the gold code set and the language. Returns MRR@10, Recall@1/3/5/10,
MAP@10 and nDCG@10 overall and per language, at the exact-code and at the 3-character category level.
The arithmetic lives in `metrics.py` (the same file as `cie10/eval_harness/metrics.py`, the harness's single
source of truth), so this module and `cie10 evaluate` cannot disagree.
"""

from __future__ import annotations

import datasets
import evaluate

from .metrics import compute_metrics

_CITATION = """\
@software{cie10_retrieval,
  title = {cie10: multilingual retrievers for ICD-10-CM / CIE-10 codes},
  note = {evaluation module cie10_retrieval},
  year = {2026}
}
"""

_DESCRIPTION = """\
Ranking metrics for clinical code retrieval. Each query comes with the codes a system ranked (best first), the
gold code(s) and the query's language. Codes are normalized (`j45909` -> `J45.909`); a repeated predicted code
counts once; a query without gold is left out of the means. Category-level metrics cut every code to its
3-character category and rank the distinct categories of the top 10 predicted codes.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `str`): ranked predicted codes per query, best first.
    references (`list` of `list` of `str`): gold codes per query (one or several).
    languages (`list` of `str`): the language of each query (ISO 639-1, e.g. `es`).
Returns:
    A flat dict. Overall: `mrr_at_10`, `recall_at_1`, `recall_at_3`, `recall_at_5`, `recall_at_10`,
    `map_at_10`, `ndcg_at_10`, the same prefixed `category_`, `num_queries` and `num_queries_without_gold`.
    Per language: the same keys prefixed by the language and a slash (`es/mrr_at_10`).
Examples:
    >>> module = evaluate.load("cie10/eval_harness/cie10_retrieval")
    >>> results = module.compute(
    ...     predictions=[["J45.909", "J45.20"], ["I10"]],
    ...     references=[["J45.20"], ["I10"]],
    ...     languages=["en", "es"],
    ... )
    >>> results["mrr_at_10"], results["recall_at_1"], results["category_recall_at_1"]
    (0.75, 0.5, 1.0)
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Cie10Retrieval(evaluate.Metric):
    """MRR@10, Recall@1/3/5/10, MAP@10, nDCG@10, per language, code and category level."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            module_type="metric",
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("string")),
                    "references": datasets.Sequence(datasets.Value("string")),
                    "languages": datasets.Value("string"),
                }
            ),
            reference_urls=["https://www.cdc.gov/nchs/icd/icd-10-cm/index.html"],
        )

    def _compute(self, predictions, references, languages) -> dict:
        return compute_metrics(predictions, references, languages)
