"""Two-stage code search: a bi-encoder shortlist over the code index, optionally reordered by a cross-encoder.

A query that is, once normalised (or loosely: accents, articles, plurals and word order aside), a mention coders
already coded (the index's known mentions, CodiEsp train in the released models: `cie10.known_mentions`) ranks
those codes first ("exact" hits: most often given first, then by the models; `matched_name` is the known mention);
the models rank everything else after them. The reranker keeps that order: it reorders codes given equally often
and the models' part.

The Space, the eval harness and the benchmarks all call this one function-set; the Space only draws it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace

import numpy as np

from cie10.catalog import Catalog, load_catalog
from cie10.code_index import CodeIndex, encode_queries
from cie10.errors import Cie10Error
from cie10.fusion import fused_scores

logger = logging.getLogger(__name__)

MAX_QUERY_CHARS = 500


class EmptyQueryError(Cie10Error):
    """An empty or whitespace-only query."""


@dataclass(frozen=True)
class Hit:
    """One ranked code: `score` is the bi-encoder cosine, `rerank_score` the cross-encoder's when it ran (the
    reranked order is by `rerank_score + bi_weight * score`, `cie10.fusion`).

    `matched_name` is the name of the code (title, inclusion term, label in another language, example) whose
    row scored best, in `matched_language`.
    """

    rank: int
    code: str
    score: float
    rerank_score: float | None = None
    fused_score: float | None = None
    """What the reranked head is ordered by: `rerank_score + bi_weight * score` (`cie10.fusion`)."""
    matched_name: str | None = None
    matched_language: str | None = None
    exact: bool = False
    """The query matches a known mention (`matched_name`) coded with this code (`cie10.known_mentions`)."""
    times_coded: int = 0
    """How often coders gave this code to that known mention (0 for the models' hits): exact hits stay in this
    order, reranked or not; the reranker orders codes given equally often, and the models' hits after them."""

    @property
    def ranking_score(self) -> float:
        """The score the hit is ranked by: the fused score where the reranker ran, else the cosine."""
        return self.fused_score if self.fused_score is not None else self.score


@dataclass
class SearchResult:
    """Ranked hits for one query and the seconds each stage took."""

    query: str
    hits: list[Hit]
    timings: dict[str, float] = field(default_factory=dict)


def check_query(query: str) -> str:
    """The query stripped; empty ones raise, overlong ones are cut to `MAX_QUERY_CHARS`."""
    text = (query or "").strip()
    if not text:
        raise EmptyQueryError("empty query: type a diagnosis, symptom or procedure in any of en, es, ca, it, pt, fr")
    return text[:MAX_QUERY_CHARS]


class CodeSearcher:
    """Bi-encoder + code index (+ optional cross-encoder reranker) over one catalogue.

    `bi_weight` fuses the two stages' scores in the reranked order (`cie10.fusion`); by default the weight the
    reranker ships with (`cie10_fusion.json`, read by `cie10.inference.load_cross_encoder`), else 0.
    """

    def __init__(
        self,
        bi_encoder,
        index: CodeIndex,
        reranker=None,
        catalog: Catalog | None = None,
        *,
        bi_weight: float | None = None,
        known_mentions: bool = True,
    ) -> None:
        self.bi_encoder = bi_encoder
        self.index = index
        self.reranker = reranker
        self.known = index.known if known_mentions else None
        """Known mentions whose codes a verbatim query ranks first (see the module docstring); None: off."""
        self.bi_weight = bi_weight if bi_weight is not None else float(getattr(reranker, "cie10_bi_weight", 0.0))
        self.catalog = catalog or load_catalog()
        self._billable = np.array([self.catalog[code].billable for code in index.codes])
        self._chapters = np.array([self.catalog[code].chapter for code in index.codes])

    @classmethod
    def from_hub(
        cls,
        model_id: str,
        reranker_id: str | None = None,
        *,
        revision: str | None = None,
        reranker_revision: str | None = None,
        backend: str | None = None,
    ) -> CodeSearcher:
        """Load the bi-encoder, its `code_index/` and the reranker by Hub id (or local folder) and revision.

        `backend` (`torch`, `onnx`, `onnx-int8`; default: the `CIE10_BACKEND` setting) picks the inference path
        of both models; one without the ONNX file falls back to torch (`cie10.inference.load_encoder`).
        """
        from pathlib import Path

        from cie10.inference import load_cross_encoder, load_encoder

        bi_encoder = load_encoder(model_id, revision, backend)
        index = CodeIndex.load(model_id) if Path(model_id).is_dir() else CodeIndex.from_hub(model_id, revision)
        reranker = load_cross_encoder(reranker_id, reranker_revision, backend) if reranker_id else None
        return cls(bi_encoder, index, reranker)

    def _allowed(self, billable_only: bool, chapter: str | None) -> np.ndarray | None:
        if not billable_only and not chapter:
            return None
        mask = np.ones(len(self.index), dtype=bool)
        if billable_only:
            mask &= self._billable
        if chapter:
            mask &= self._chapters == str(chapter)
        return mask

    def search_many(
        self,
        queries: list[str],
        *,
        top_k: int = 10,
        rerank: bool = True,
        rerank_top: int = 20,
        billable_only: bool = False,
        chapter: str | None = None,
        batch_size: int = 64,
    ) -> list[SearchResult]:
        """Rank codes for each query; with a reranker and `rerank`, the top `rerank_top` are reordered."""
        texts = [check_query(query) for query in queries]
        started = time.perf_counter()
        embeddings = encode_queries(self.bi_encoder, texts, batch_size=batch_size)
        encoded = time.perf_counter()
        depth = max(top_k, rerank_top if rerank and self.reranker is not None else 0)
        allowed = self._allowed(billable_only, chapter)
        scores, positions, rows = self.index.search(embeddings, depth, allowed)
        results = []
        for text, embedding, code_scores, code_positions, matched_rows in zip(
            texts, embeddings, scores, positions, rows, strict=True
        ):
            hits = [
                self._hit(int(position), float(score), int(row))
                for score, position, row in zip(code_scores, code_positions, matched_rows, strict=True)
                if np.isfinite(score)
            ]
            if self.known is not None:
                hits = self._exact_hits_first(text, embedding, hits, allowed)
            results.append(SearchResult(text, hits))
        retrieved = time.perf_counter()
        if rerank and self.reranker is not None:
            self._rerank(results, rerank_top, batch_size)
        finished = time.perf_counter()
        for result in results:
            result.hits = [replace(hit, rank=position + 1) for position, hit in enumerate(result.hits[:top_k])]
            result.timings = {
                "encode_s": (encoded - started) / len(results),
                "retrieve_s": (retrieved - encoded) / len(results),
                "rerank_s": (finished - retrieved) / len(results),
            }
        return results

    def _hit(self, position: int, score: float, row: int) -> Hit:
        """A hit (rank set later) for the code at `position`, with the name its best row holds."""
        code = self.index.codes[position]
        matched = self.index.row(row)
        if matched is None:  # an index saved before names were kept: its one row is the English title
            return Hit(0, code, score, matched_name=self.catalog[code].title, matched_language="en")
        return Hit(0, code, score, matched_name=matched.text, matched_language=matched.language)

    def _exact_hits_first(
        self, text: str, embedding: np.ndarray, hits: list[Hit], allowed: np.ndarray | None
    ) -> list[Hit]:
        """`hits` with the codes of a known mention identical to `text` first, found by the models or not."""
        found = self.known.match(text)
        if found is None:
            return hits
        matched_text, codes = found
        given = [
            (self.index.row_of[code], count)
            for code, count in codes
            if code in self.index.row_of and (allowed is None or allowed[self.index.row_of[code]])
        ]
        if not given:
            return hits
        scores, _ = self.index.score_codes(embedding, [position for position, _ in given])
        ranked = sorted(zip(given, scores, strict=True), key=lambda item: (-item[0][1], -item[1]))
        language = self.known.meta.get("language")
        exact = [
            Hit(0, self.index.codes[position], float(score), None, None, matched_text, language, True, count)
            for (position, count), score in ranked
        ]
        known = {hit.code for hit in exact}
        return exact + [hit for hit in hits if hit.code not in known]

    def _rerank(self, results: list[SearchResult], rerank_top: int, batch_size: int) -> None:
        pairs = [(result.query, self.catalog[hit.code].title) for result in results for hit in result.hits[:rerank_top]]
        if not pairs:
            return
        scores = iter(self.reranker.predict(pairs, batch_size=batch_size, show_progress_bar=False))
        for result in results:
            head = [replace(hit, rerank_score=float(next(scores))) for hit in result.hits[:rerank_top]]
            fused = fused_scores([hit.rerank_score for hit in head], [hit.score for hit in head], self.bi_weight)
            # exact hits stay first, most often given first; the fused score orders the rest and the ties
            order = np.lexsort((-fused, [-hit.times_coded for hit in head], [not hit.exact for hit in head]))
            head = [replace(head[i], fused_score=float(fused[i])) for i in order]
            result.hits = head + result.hits[rerank_top:]

    def search(self, query: str, **options) -> SearchResult:
        """Rank codes for one query (see `search_many` for the options)."""
        return self.search_many([query], **options)[0]
