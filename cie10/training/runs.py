"""What both training recipes share: the run folder, checkpoints and resuming, trainer arguments, publishing."""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cie10.catalog import SCOPES, CodeEntry
from cie10.errors import Cie10Error, ConfigError
from cie10.settings import get_settings
from cie10.training.config import TrainingRunConfig
from cie10.training.data import TrainingData
from cie10.training.summary import read_json, write_json_atomic

logger = logging.getLogger(__name__)

CHECKPOINTS_DIRNAME = "checkpoints"


def check_inputs(config: TrainingRunConfig) -> None:
    """Fail with one clear message, before anything is written, on inputs that cannot be found.

    The dataset: a folder that does not exist is refused here (a Hub id is checked when it loads, which comes
    before the run folder is touched too). The reranker's bi-encoder: a folder, or a model repo on the Hub.
    The base model is resolved by `describe_base_model`, also before `prepare_run_dir`. With `--push`, the Hub
    to publish to must answer.
    """
    from cie10 import hub
    from cie10.training.models import check_hub_model, looks_like_path

    if config.push:  # found now, not after an hour of training
        if config.target == "local":
            hub.check_local_target()
        else:
            hub.check_endpoint()
    dataset = config.dataset_id
    if looks_like_path(dataset) and not Path(dataset).expanduser().is_dir():
        raise ConfigError(f"dataset {dataset}: no such folder (a Hub id is <org>/<name>)")
    bi_encoder = getattr(config, "bi_encoder_id", None)
    if bi_encoder is not None and not Path(bi_encoder).expanduser().is_dir():
        hint = " (train one with `cie10 train bi-encoder` or pass --bi_encoder)"
        try:
            check_hub_model("bi-encoder", bi_encoder, getattr(config, "bi_encoder_revision", None))
        except Cie10Error as error:
            raise type(error)(f"{error}{hint}") from error


def prepare_run_dir(config: TrainingRunConfig, *, is_main_process: bool = True) -> Path:
    """Choose the folder this run writes into and save the config there; call it once every input resolved.

    - `--resume` continues `<run_name>.tmp` (a fresh run that was building beside an earlier one) if it exists,
      else `<output_dir>/<run_name>` in place.
    - A fresh run writes into `<output_dir>/<run_name>` when that is empty or absent. When it holds an earlier
      run, the fresh run is built in `<run_name>.tmp` beside it, and `promote_run` replaces the earlier run only
      once the new model is saved: a failed or interrupted run leaves the earlier one as it was.
    """
    named = config.named_run_dir
    staging = _staging_dir(config)
    if config.resume:
        config.write_into(staging if staging.is_dir() else None)
    elif named.is_dir() and any(named.iterdir()):
        config.write_into(staging)
        if is_main_process:
            if staging.exists():
                logger.info("fresh run: removing %s, an unfinished fresh run (use --resume to continue one)", staging)
                shutil.rmtree(staging)
            logger.info("fresh run: building in %s; it replaces %s once its model is saved", staging, named)
    else:
        config.write_into(None)
    run_dir = config.run_dir
    if is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        config.save(run_dir / "config.yaml")
    return run_dir


def _staging_dir(config: TrainingRunConfig) -> Path:
    """`<output_dir>/<run_name>.tmp`: where a fresh run is built while an earlier run keeps its folder."""
    return config.named_run_dir.with_name(f"{config.run_name}.tmp")


def promote_run(config: TrainingRunConfig) -> Path:
    """Once a fresh run's model is saved: its folder replaces the earlier run's (`<output_dir>/<run_name>`).

    The earlier run is moved aside, the new one renamed into place, then the earlier one removed; returns the run
    folder. A run that wrote in place already is there.
    """
    named, built = config.named_run_dir, config.run_dir
    if built == named:
        return named
    old = named.with_name(f".{named.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if named.exists():
        named.rename(old)
    built.rename(named)
    config.write_into(None)
    shutil.rmtree(old, ignore_errors=True)
    logger.info("the new run replaced the earlier one in %s", named)
    return named


def resume_checkpoint(config: TrainingRunConfig) -> str | None:
    """The last *complete* checkpoint of the run when resuming (None: start at step 0).

    A checkpoint is complete once the Trainer wrote its `trainer_state.json` (it comes after the weights, the
    optimizer and the scheduler); a later one cut short by a kill is removed with a warning (training writes it
    again when it passes that step).
    """
    from transformers.trainer import TRAINER_STATE_NAME
    from transformers.trainer_utils import sort_checkpoints

    if not config.resume:
        return None
    folder = config.run_dir / CHECKPOINTS_DIRNAME
    checkpoints = sort_checkpoints(str(folder)) if folder.is_dir() else []
    for checkpoint in reversed(checkpoints):
        if (Path(checkpoint) / TRAINER_STATE_NAME).is_file():
            logger.info("resuming from %s", checkpoint)
            return checkpoint
        logger.warning("--resume: %s was cut short (no %s): removing it", checkpoint, TRAINER_STATE_NAME)
        shutil.rmtree(checkpoint)
    logger.warning("--resume: no complete checkpoint in %s, starting from step 0", folder)
    return None


def announce_scope(config: TrainingRunConfig, corpus: list[CodeEntry]) -> str:
    """Log (and return) which catalogue codes the run retrieves among."""
    where = f", chapters {', '.join(config.chapters)}" if config.chapters else ""
    line = f"catalogue scope {config.scope!r} ({SCOPES[config.scope]}){where}: {len(corpus)} codes"
    logger.info("%s", line)
    return line


def trainer_arguments(config: TrainingRunConfig) -> dict[str, Any]:
    """Keyword arguments of `SentenceTransformerTrainingArguments` / `CrossEncoderTrainingArguments`."""
    return {
        "output_dir": str(config.run_dir / CHECKPOINTS_DIRNAME),
        "num_train_epochs": config.num_train_epochs,
        "max_steps": config.max_steps,
        "per_device_train_batch_size": config.batch_size,
        "per_device_eval_batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "warmup_steps": config.warmup_ratio,
        "seed": config.seed,
        "bf16": config.bf16,
        "eval_strategy": "steps" if config.eval_steps else "no",
        "eval_steps": config.eval_steps,
        "save_strategy": "steps",
        "save_steps": config.save_steps,
        "save_total_limit": config.save_total_limit,
        "logging_steps": config.logging_steps,
        "logging_first_step": True,
        "report_to": "none",
        "run_name": config.run_name,
        "disable_tqdm": not config.show_progress_bar,
        "dataloader_pin_memory": _has_cuda(),
    }


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def parameters_fingerprint(model: Any) -> str:
    """A hash of the trainable weights: names an encoding made by exactly these weights."""
    digest = hashlib.sha256()
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            digest.update(name.encode())
            digest.update(parameter.detach().cpu().float().numpy().tobytes())
    return digest.hexdigest()[:16]


def staging_dir(final: Path) -> Path:
    """An empty sibling folder to write the final model into before it replaces `final`."""
    staging = final.with_name(f".{final.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def swap_into_place(staging: Path, final: Path) -> Path:
    """Replace `final` by `staging` (a reader sees the old or the new model, never half of one)."""
    old = final.with_name(f".{final.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def publish(config: TrainingRunConfig) -> dict[str, Any]:
    """Publish `models/<run_name>/final` as `<org>/<repo_name>` (tagged `version`); returns where and which sha."""
    from cie10.hub import publish_folder

    sha = publish_folder(config.final_dir, config.repo_id, "model", version=config.version, target=config.target)
    logger.info(
        "published %s to %s%s (%s): %s",
        config.final_dir,
        config.repo_id,
        f"@{config.version}" if config.version else "",
        config.target,
        sha,
    )
    return {
        "repo_id": config.repo_id,
        "version": config.version,
        "target": config.target,
        "sha": sha,
        "org": get_settings().org,
    }


def card_languages(data: TrainingData) -> list[str]:
    """The card's languages: the queries' plus English (the documents are English titles)."""
    return sorted({*data.languages, "en"})


def dataset_card_entry(data: TrainingData) -> dict[str, str]:
    """`{"name", "id", "revision"}` for a Hub dataset, `{"name"}` for a local folder."""
    if Path(data.dataset_id).expanduser().is_dir():
        return {"name": Path(data.dataset_id).name}
    return {"name": data.dataset_id.split("/")[-1], "id": data.dataset_id, "revision": data.revision}


def evaluate_once(measure: Callable[[], dict], path: Path, key: str, *, is_main_process: bool = True) -> dict:
    """`measure()` (an evaluation of the base model), kept in `path` under `key`: it is not made twice."""
    cached = read_json(path)
    if cached and cached.get("key") == key:
        logger.info("base model scores measured earlier (%s)", path)
        return cached["results"]
    if not is_main_process:
        return {}
    logger.info("evaluating the base model")
    results = measure()
    write_json_atomic(path, {"key": key, "results": results})
    return results
