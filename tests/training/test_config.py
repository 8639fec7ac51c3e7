"""Training configs: YAML round trip, presets, and the CLI's YAML-then-flags precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from cie10.errors import Cie10Error, ConfigError
from cie10.training.config import BiEncoderConfig, RerankerConfig, load_config, preset_path


def test_yaml_round_trip(tmp_path: Path) -> None:
    config = BiEncoderConfig(
        base_model="PlanTL-GOB-ES/bsc-bio-ehr-es",
        languages=["es", "ca"],
        chapters=["10"],
        max_steps=7,
        learning_rate=3e-5,
        freeze_embeddings=False,
        loss="cached_mnrl",
        dataset_revision="v1.0",
    )
    path = config.save(tmp_path / "run.yaml")
    assert load_config(BiEncoderConfig, path) == config


def test_defaults_name_the_run_and_the_repo() -> None:
    bi, rerank = BiEncoderConfig(), RerankerConfig()
    assert (bi.run_name, bi.repo_name, bi.base_model) == ("cie10-bi", "cie10-bi", "default")
    assert (rerank.run_name, rerank.repo_name) == ("cie10-rerank", "cie10-rerank")
    assert rerank.bi_encoder_id == str(Path("models") / "cie10-bi" / "final")
    assert bi.final_dir == Path("models") / "cie10-bi" / "final"


def test_unknown_keys_and_scopes_are_refused(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("learning_rat: 0.1\n")
    with pytest.raises(ConfigError, match="learning_rat"):
        load_config(BiEncoderConfig, tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="scope"):
        BiEncoderConfig(scope="everything")
    with pytest.raises(Cie10Error, match="index names setting 'every'"):
        BiEncoderConfig(index_names="every")


@pytest.mark.parametrize(
    "name",
    [
        "quickstart-bi-encoder",
        "quickstart-reranker",
        "gpu-bi-encoder",
        "gpu-reranker",
        "cpu-full-bi-encoder",
        "cpu-full-reranker",
        "cpu-zeroshot-bi-encoder",
    ],
)
def test_presets_load(name: str) -> None:
    cls = RerankerConfig if "reranker" in name else BiEncoderConfig
    assert preset_path(name) is not None
    config = load_config(cls, name)
    assert config.scope == ("quickstart" if name.startswith("quickstart") else "full")


def test_cli_flags_override_the_yaml_file(tmp_path: Path) -> None:
    from cie10.cli import build_parser
    from cie10.commands.train import config_from_args

    (tmp_path / "run.yaml").write_text("max_steps: 5\nbatch_size: 8\nlanguages: [es, fr]\n")
    args = build_parser().parse_args(
        [
            "train",
            "bi-encoder",
            "--config",
            str(tmp_path / "run.yaml"),
            "--batch-size",
            "4",
            "--scope",
            "full",
            "--no_freeze_embeddings",
            "--base_model",
            "PlanTL-GOB-ES/bsc-bio-ehr-es",
        ]
    )
    config = config_from_args(args)
    assert isinstance(config, BiEncoderConfig)
    assert (config.max_steps, config.batch_size, config.languages) == (5, 4, ["es", "fr"])
    assert (config.scope, config.freeze_embeddings, config.base_model) == (
        "full",
        False,
        "PlanTL-GOB-ES/bsc-bio-ehr-es",
    )
    rerank = config_from_args(build_parser().parse_args(["train", "reranker", "--candidates", "3"]))
    assert isinstance(rerank, RerankerConfig) and rerank.candidates == 3


def test_train_kinds_keep_only_those_rows() -> None:
    import datasets

    from cie10.training.data import restrict_to_kinds

    rows = datasets.Dataset.from_list(
        [
            {"query": "Asthma", "code": "J45.909", "language": "en", "kind": "name"},
            {"query": "crisis asmática", "code": "J45.901", "language": "es", "kind": "query"},
            {"query": "asma bronquial", "code": "J45.909", "language": "es", "kind": "name"},
        ]
    )
    assert restrict_to_kinds(rows, ["name"])["query"] == ["Asthma", "asma bronquial"]
    assert restrict_to_kinds(rows, ["query"])["query"] == ["crisis asmática"]
    assert len(restrict_to_kinds(rows, None)) == 3
    with pytest.raises(ConfigError, match="needs a `kind` column"):
        restrict_to_kinds(rows.remove_columns("kind"), ["name"])
    with pytest.raises(ConfigError, match="unknown row kind"):
        BiEncoderConfig(train_kinds=["mention"])
    assert load_config(BiEncoderConfig, "cpu-zeroshot-bi-encoder").train_kinds == ["name"]
    assert load_config(RerankerConfig, "cpu-full-reranker").train_kinds == ["query"]


def test_max_name_rows_caps_the_labels_and_keeps_every_clinical_row() -> None:
    import datasets

    from cie10.training.data import cap_name_rows

    rows = datasets.Dataset.from_list(
        [{"query": f"label {i}", "code": "J45.909", "language": "en", "kind": "name"} for i in range(6)]
        + [{"query": f"crisis {i}", "code": "J45.901", "language": "es", "kind": "query"} for i in range(3)]
    )
    capped = cap_name_rows(rows, 2, seed=42)
    assert capped["kind"].count("name") == 2 and capped["kind"].count("query") == 3
    assert set(capped["query"]) < set(rows["query"]) and cap_name_rows(rows, 2, seed=42)["query"] == capped["query"]
    assert len(cap_name_rows(rows, None, seed=42)) == 9 and len(cap_name_rows(rows, 100, seed=42)) == 9
    with pytest.raises(ConfigError, match="needs a `kind` column"):
        cap_name_rows(rows.remove_columns("kind"), 2, seed=42)
    with pytest.raises(ConfigError, match="max_name_rows"):
        BiEncoderConfig(max_name_rows=0)
    preset = load_config(BiEncoderConfig, "cpu-full-bi-encoder")
    assert preset.max_name_rows == 10000 and preset.max_train_samples is None
