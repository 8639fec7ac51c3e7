"""Evaluators: one per language (each with its own `name`, so the card gets a per-language table) plus their mean.

Retrieval: `InformationRetrievalEvaluator` per language over one corpus, the English titles of every code of the
catalogue scope (not only the codes of the split), with each mention's gold code as the relevant document. The
corpus is encoded once per evaluation and shared by the languages. Reranking: `CrossEncoderRerankingEvaluator`
per language on held-out groups (the bi-encoder's top candidates in its order), reporting Base -> Reranked.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

import numpy as np
from sentence_transformers.base.evaluation.sequential import SequentialEvaluator

from cie10.catalog import CodeEntry
from cie10.code_index import DOCUMENT_PROMPT_NAME, QUERY_PROMPT_NAME, document_text, encode_documents

logger = logging.getLogger(__name__)

EVAL_PREFIX = "cie10"
MEAN = "mean"
PRIMARY_METRIC = "mrr@10"


def evaluator_name(language: str) -> str:
    """`cie10_<language>`: the name the card and the metrics use."""
    return f"{EVAL_PREFIX}_{language}"


class MeanOverLanguagesEvaluator(SequentialEvaluator):
    """Runs one evaluator per language and adds the mean of every metric as `cie10_mean_<metric>`.

    As ST's NanoBEIR evaluator does for its datasets. Retrieval evaluators that share a corpus get it encoded
    once per call. The primary metric is the mean MRR@10.
    """

    def __init__(self, evaluators: list[Any], languages: list[str], *, shared_corpus: bool = False) -> None:
        super().__init__(evaluators, main_score_function=lambda scores: float(np.mean(scores)))
        self.languages = list(languages)
        self.shared_corpus = shared_corpus
        self.name = f"{EVAL_PREFIX}_{MEAN}"
        self.primary_metric = None

    def __call__(
        self,
        model: Any,
        output_path: str | None = None,
        epoch: int = -1,
        steps: int = -1,
        corpus_embeddings: Any = None,
    ) -> dict[str, float]:
        """Evaluate every language; `corpus_embeddings` (rows in corpus order) skips encoding the corpus."""
        extra: dict[str, Any] = {}
        if corpus_embeddings is not None:
            extra["corpus_embeddings"] = corpus_embeddings
        elif self.shared_corpus and self.evaluators:
            first = self.evaluators[0]
            logger.info("encoding the %d corpus titles once for %d languages", len(first.corpus), len(self.evaluators))
            extra["corpus_embeddings"] = first.embed_inputs(
                model,
                first.corpus,
                encode_fn_name="document",
                prompt_name=first.corpus_prompt_name,
                prompt=first.corpus_prompt,
            )
        results: dict[str, float] = {}
        per_metric: dict[str, list[float]] = defaultdict(list)
        for evaluator in self.evaluators:
            scores = evaluator(model, output_path, epoch, steps, **extra)
            results.update(scores)
            for key, value in scores.items():
                per_metric[key[len(evaluator.name) + 1 :]].append(float(value))
        mean = {metric: float(np.mean(values)) for metric, values in per_metric.items()}
        primary = next(
            (m for m in mean if m.endswith(PRIMARY_METRIC) and not m.startswith("base_")), next(iter(mean), None)
        )
        self.primary_metric = primary
        mean = self.prefix_name_to_metrics(mean, self.name)
        if len(self.evaluators) > 1:
            self.store_metrics_in_model_card_data(model, mean, epoch, steps)
        results.update(mean)
        return results

    def per_language(self, results: dict[str, float]) -> dict[str, dict[str, float]]:
        """`{language or "mean": {metric: value}}` from this evaluator's flat results."""
        table: dict[str, dict[str, float]] = {}
        for language in [*self.languages, MEAN]:
            prefix = f"{evaluator_name(language)}_"
            table[language] = {k[len(prefix) :]: float(v) for k, v in results.items() if k.startswith(prefix)}
        return table

    def get_config_dict(self) -> dict[str, Any]:
        return {"languages": self.languages}


class CorpusEmbeddings:
    """The corpus titles encoded by one model on first use; the mining and the evaluation share them."""

    def __init__(self, model: Any, corpus: list[CodeEntry], *, show_progress_bar: bool = False) -> None:
        self.model = model
        self.corpus = corpus
        self.show_progress_bar = show_progress_bar
        self._embeddings: np.ndarray | None = None

    def get(self) -> np.ndarray:
        """Normalised float32 rows in corpus order."""
        if self._embeddings is None:
            logger.info("encoding the %d corpus titles", len(self.corpus))
            self._embeddings = encode_documents(
                self.model, [document_text(entry) for entry in self.corpus], show_progress_bar=self.show_progress_bar
            )
        return self._embeddings

    def tensor(self) -> Any:
        """`get()` as a torch tensor (what the IR evaluator takes)."""
        import torch

        return torch.from_numpy(self.get()).to(self.model.device)


def retrieval_evaluator(
    queries: dict[str, tuple[dict[str, str], dict[str, set[str]]]],
    corpus: list[CodeEntry],
    model: Any,
    *,
    batch_size: int = 64,
    show_progress_bar: bool = False,
) -> MeanOverLanguagesEvaluator:
    """One IR evaluator per language (`queries` from `data.eval_queries`) over the corpus titles, plus the mean."""
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    prompts = getattr(model, "prompts", None) or {}
    corpus_map = {entry.code: document_text(entry) for entry in corpus}
    evaluators = [
        InformationRetrievalEvaluator(
            queries=language_queries,
            corpus=corpus_map,
            relevant_docs=relevant,
            name=evaluator_name(language),
            batch_size=batch_size,
            show_progress_bar=show_progress_bar,
            mrr_at_k=[10],
            ndcg_at_k=[10],
            accuracy_at_k=[1, 3, 10],
            precision_recall_at_k=[10],
            map_at_k=[100],
            query_prompt_name=QUERY_PROMPT_NAME if QUERY_PROMPT_NAME in prompts else None,
            corpus_prompt_name=DOCUMENT_PROMPT_NAME if DOCUMENT_PROMPT_NAME in prompts else None,
            write_csv=True,
        )
        for language, (language_queries, relevant) in queries.items()
    ]
    return MeanOverLanguagesEvaluator(evaluators, list(queries), shared_corpus=True)


def reranking_evaluator(
    samples: dict[str, list[dict[str, Any]]],
    *,
    at_k: int = 10,
    batch_size: int = 64,
    show_progress_bar: bool = False,
) -> MeanOverLanguagesEvaluator:
    """One `CrossEncoderRerankingEvaluator` per language on held-out groups, plus the mean.

    Each sample's `documents` are the bi-encoder's top candidates in its order, so the evaluator reports the
    bi-encoder's ranking (`base_*`) and the reranked one over the same candidates; a gold code the bi-encoder
    missed counts as a miss for both (`always_rerank_positives=False`: the realistic setting).
    """
    from sentence_transformers.cross_encoder.evaluation import CrossEncoderRerankingEvaluator

    evaluators = []
    for language, language_samples in samples.items():
        evaluator = CrossEncoderRerankingEvaluator(
            language_samples,
            at_k=at_k,
            always_rerank_positives=False,
            name=evaluator_name(language),
            batch_size=batch_size,
            show_progress_bar=show_progress_bar,
        )
        evaluator.primary_metric = f"mrr@{at_k}"
        evaluators.append(evaluator)
    return MeanOverLanguagesEvaluator(evaluators, list(samples))


def gains(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]], metric: str) -> dict[str, float]:
    """`after - before` of one metric per language (and mean)."""
    return {
        language: round(after[language][metric] - before[language][metric], 4)
        for language in after
        if metric in after[language] and metric in before.get(language, {})
    }
