"""An interrupted run resumes from its last complete checkpoint and goes on counting steps from there."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import TrainerCallback

pytestmark = pytest.mark.slow


class Interrupt(TrainerCallback):
    """Stops the run like Ctrl-C, right after the checkpoint of `at_step` is written."""

    def __init__(self, at_step: int) -> None:
        self.at_step = at_step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.at_step:
            raise KeyboardInterrupt


class FirstStep(TrainerCallback):
    """Records the global step at which training (re)starts."""

    def __init__(self) -> None:
        self.first: int | None = None

    def on_step_begin(self, args, state, control, **kwargs):
        if self.first is None:
            self.first = state.global_step


def test_interrupted_run_resumes_from_its_last_checkpoint(terminology_dataset: Path, tmp_path: Path) -> None:
    from cie10.training.bi_encoder import train_bi_encoder
    from cie10.training.config import BiEncoderConfig

    settings = dict(
        dataset=str(terminology_dataset),
        scope="categories",
        chapters=["10"],
        output_dir=str(tmp_path),
        run_name="resume",
        max_steps=4,
        save_steps=2,
        batch_size=4,
        num_hard_negatives=0,
        freeze_layers=10,
        max_eval_queries=8,
        build_index=False,
        export_onnx=False,
        show_progress_bar=False,
    )
    with pytest.raises(KeyboardInterrupt):
        train_bi_encoder(BiEncoderConfig(**settings), callbacks=[Interrupt(at_step=2)])
    checkpoints = tmp_path / "resume" / "checkpoints"
    assert [p.name for p in checkpoints.iterdir() if p.name.startswith("checkpoint-")] == ["checkpoint-2"]
    assert not (tmp_path / "resume" / "final").exists()
    base_eval = (tmp_path / "resume" / "base_eval.json").stat().st_mtime
    # a kill while the next checkpoint was being written leaves it without weights or trainer state (as seen in a
    # full run): resuming skips it and goes back to the last complete one
    cut_short = checkpoints / "checkpoint-3"
    cut_short.mkdir()
    (cut_short / "config.json").write_text((checkpoints / "checkpoint-2" / "config.json").read_text())
    (cut_short / ".tmpAbC123").write_bytes(b"\0" * 1024)

    first = FirstStep()
    summary = train_bi_encoder(BiEncoderConfig(**settings, resume=True), callbacks=[first])
    assert first.first == 2  # continued, did not start over
    assert summary["training"]["global_step"] == 4
    assert summary["training"]["resumed_from"].endswith("checkpoint-2")
    assert not cut_short.exists()
    assert (tmp_path / "resume" / "base_eval.json").stat().st_mtime == base_eval  # base scores not re-measured
    assert (tmp_path / "resume" / "final" / "model.safetensors").is_file()

    # a fresh run over the finished one is built beside it: interrupted, the finished run is byte-identical ...
    finished = {
        p.relative_to(tmp_path / "resume"): p.read_bytes() for p in (tmp_path / "resume").rglob("*") if p.is_file()
    }
    with pytest.raises(KeyboardInterrupt):
        train_bi_encoder(BiEncoderConfig(**{**settings, "seed": 7}), callbacks=[Interrupt(at_step=2)])
    now = {p.relative_to(tmp_path / "resume"): p.read_bytes() for p in (tmp_path / "resume").rglob("*") if p.is_file()}
    assert now == finished
    assert (tmp_path / "resume.tmp" / "checkpoints" / "checkpoint-2").is_dir()

    # ... and --resume completes it, and only then does it replace the earlier run
    again = FirstStep()
    summary = train_bi_encoder(BiEncoderConfig(**{**settings, "seed": 7}, resume=True), callbacks=[again])
    assert again.first == 2 and summary["config"]["seed"] == 7
    assert not (tmp_path / "resume.tmp").exists()
    assert (tmp_path / "resume" / "final" / "model.safetensors").read_bytes() != finished[
        Path("final/model.safetensors")
    ]
