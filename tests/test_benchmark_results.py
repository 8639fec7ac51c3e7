"""The committed benchmark files agree: RESULTS.md and the README's headline numbers are rendered from the JSON."""

from __future__ import annotations

from benchmarks.common import RESULTS_DIR, RESULTS_MD, read_results
from benchmarks.render import HEADLINE_BEGIN, HEADLINE_END, README, headline, render


def test_results_md_is_rendered_from_the_committed_json() -> None:
    results = read_results(RESULTS_DIR)
    assert results, "benchmarks/results/*.json are committed"
    assert RESULTS_MD.read_text(encoding="utf-8") == render(results), "run `python -m benchmarks.render`"


def test_readme_headline_numbers_come_from_the_benchmark_json() -> None:
    text = README.read_text(encoding="utf-8")
    block = text.split(HEADLINE_BEGIN, 1)[1].split(HEADLINE_END, 1)[0]
    expected = headline(read_results(RESULTS_DIR))
    assert block.endswith(expected), "run `python -m benchmarks.render`: the README's numbers are generated"
    assert "MRR@10" in block and "Acc@1" in block
