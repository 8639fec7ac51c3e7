"""cie10.model_cards: the Hub cards of a release, built from the artifacts and the harness's JSON.

- `repos`: the release's repos (ids, types, publishing order) and the cross-link table every card carries.
- `scores`: the harness's results JSON → the four systems, `model-index` `EvalResult`s, per-language tables.
- `model_card`: the bi-encoder and reranker cards (sentence-transformers' card data, then the project's template).
- `dataset_cards`: `<org>/cie10-synth` and `<org>/cie10-codes` (counts, curation report, sources and licenses).
- `space_cards`: the Gradio Space and the metric Space (their README plus a release section).
- `templates/`: the Jinja templates of the prose; YAML headers always come from `huggingface_hub` card data.
"""

from __future__ import annotations

from cie10.model_cards.repos import ReleaseRepo, ReleaseRepos

CITATION_TEMPLATE = """@software{{cie10_{year},
  title = {{cie10: multilingual retrievers for ICD-10-CM / CIE-10 clinical codes}},
  author = {{{{cie10 contributors}}}},
  year = {{{year}}},
  version = {{{version}}},
  note = {{Models {bi} and {reranker}, data {synth}; evaluated with {metric}}},
  url = {{{url}}}
}}"""
"""The study's citation until it has a paper: `cie10 release --citation FILE` replaces it."""


def default_citation(repos: ReleaseRepos, year: int = 2026) -> str:
    """BibTeX of the release (the study's software citation)."""
    return CITATION_TEMPLATE.format(
        year=year,
        version=repos.version,
        bi=repos.bi.repo_id,
        reranker=repos.reranker.repo_id,
        synth=repos.synth.repo_id,
        metric=repos.metric.repo_id,
        url=repos.bi.url(),
    )


__all__ = ["CITATION_TEMPLATE", "ReleaseRepo", "ReleaseRepos", "default_citation"]
