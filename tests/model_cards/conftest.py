"""Fixtures of the release tests: two releases' worth of tiny artifacts (v1.0 and v1.1), built once per session."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.model_cards import artifacts


@dataclass
class ReleaseInputs:
    """The artifacts of one release, as `cie10 release` flags."""

    bi: Path
    reranker: Path
    synth: Path
    results: list[Path]
    space: Path
    languages: list[str] = field(default_factory=list)

    def config(self, version: str, **overrides):
        from cie10.release import ReleaseConfig

        values = dict(
            version=version,
            bi=self.bi,
            reranker=self.reranker,
            synth=self.synth,
            results=self.results,
            space=self.space,
        )
        return ReleaseConfig(**{**values, **overrides})


@pytest.fixture(scope="session")
def catalog():
    from cie10.catalog import load_catalog

    return load_catalog()


@pytest.fixture(scope="session")
def codes_folder(catalog, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`cie10 codes export` once for the session (every release reuses it with `--codes`)."""
    from cie10.codes_dataset import write_codes_dataset

    return write_codes_dataset(catalog, tmp_path_factory.mktemp("codes") / "cie10-codes")


def _inputs(root: Path, base_model_path: Path, catalog, *, seed: int, languages: list[str], v2: bool):
    synth = artifacts.make_synth(root / "synth", catalog, languages, seed=seed)
    bi = artifacts.make_bi_encoder(
        base_model_path, root / "cie10-bi" / "final", catalog, synth, seed=seed, trained_card=not v2
    )
    reranker = artifacts.make_reranker(
        base_model_path, root / "cie10-rerank" / "final", catalog, synth, seed=seed + 100
    )
    base = artifacts.make_bi_encoder(
        base_model_path, root / "base" / "final", catalog, synth, seed=seed + 200, trained_card=False
    )
    results = artifacts.evaluate(catalog, synth, bi, reranker, base, root / "results", split_runs=v2)
    space = artifacts.make_space(root / "space", f"release built from seed {seed}")
    return ReleaseInputs(bi, reranker, synth, [root / "results"] if v2 else results, space, languages)


@pytest.fixture(scope="session")
def release_v1(base_model_path: Path, catalog, tmp_path_factory: pytest.TempPathFactory) -> ReleaseInputs:
    """v1.0: a training card with hyperparameters; one harness run (the bi-encoder alone as a baseline)."""
    root = tmp_path_factory.mktemp("release-v1")
    return _inputs(root, base_model_path, catalog, seed=1, languages=["en", "es", "fr", "pt", "it"], v2=False)


@pytest.fixture(scope="session")
def release_v2(base_model_path: Path, catalog, tmp_path_factory: pytest.TempPathFactory) -> ReleaseInputs:
    """v1.1: other weights, data and app; no training card (generated at release); two harness runs."""
    root = tmp_path_factory.mktemp("release-v2")
    return _inputs(root, base_model_path, catalog, seed=2, languages=["en", "es", "fr"], v2=True)
