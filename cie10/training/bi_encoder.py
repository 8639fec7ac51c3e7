"""`cie10 train bi-encoder`: fine-tune a sentence-transformers bi-encoder on (mention, code title) pairs.

The recipe reads as sentence-transformers' own training examples: 1. load the model with its card data, 2. load
the data (hard negatives mined over the catalogue scope), 3. the loss, 4. the training arguments, 5. the evaluator,
run on the base model first, 6. the trainer and `train()`, 7. save to `models/<run_name>/final` with its code index,
8. push. It runs as is on one CPU, one GPU, or several GPUs under `accelerate launch` / `torchrun`.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

from cie10 import embedded_model
from cie10.catalog import SCOPES, Catalog, CodeEntry, load_catalog
from cie10.code_index import (
    DOCUMENT_PROMPT_NAME,
    QUERY_PROMPT_NAME,
    CodeIndex,
    build_code_index,
    examples_from_rows,
)
from cie10.errors import ConfigError
from cie10.inference.files import FP32_FILE
from cie10.settings import apply_torch_threads, get_settings
from cie10.training import data as training_data
from cie10.training.config import BiEncoderConfig
from cie10.training.evaluation import CorpusEmbeddings, MeanOverLanguagesEvaluator, gains, retrieval_evaluator
from cie10.training.models import (
    BaseModelInfo,
    append_provenance,
    describe_base_model,
    freeze_for_cpu,
    load_base_model,
)
from cie10.training.runs import (
    announce_scope,
    card_languages,
    check_inputs,
    dataset_card_entry,
    evaluate_once,
    parameters_fingerprint,
    prepare_run_dir,
    promote_run,
    publish,
    resume_checkpoint,
    staging_dir,
    swap_into_place,
    trainer_arguments,
)
from cie10.training.summary import SUMMARY_FILE, git_commit, library_versions, now_iso, write_json_atomic

logger = logging.getLogger(__name__)


def train_bi_encoder(config: BiEncoderConfig, *, callbacks: list[Any] | None = None) -> dict[str, Any]:
    """Run the whole recipe; returns the run summary (also written to `models/<run_name>/run_summary.json`)."""
    from accelerate import PartialState
    from sentence_transformers import SentenceTransformerTrainer

    started = time.perf_counter()
    apply_torch_threads()
    state = PartialState()
    check_inputs(config)  # nothing is written before every input is found
    catalog = load_catalog()
    corpus = training_data.corpus_entries(catalog, config.scope, config.chapters)
    announce_scope(config, corpus)

    # 1. Load the model to fine-tune, with the data for its card
    data = training_data.load_training_data(config.dataset_id, config.dataset_revision, config.languages)
    base = describe_base_model(config.base_model)
    model, parameters = load_model(config, base, data)
    run_dir = prepare_run_dir(config, is_main_process=state.is_main_process)

    # 2. Load the data: each mention with its code's title and hard negatives mined over the corpus
    #    (the base model encodes the corpus once, for the mining and for its own evaluation)
    if base.name == embedded_model.DEFAULT_MODEL_NAME:
        with state.main_process_first():
            embedded_model.ensure_onnx_export(Path(base.load_path))  # its ONNX workers encode the corpus
    base_corpus = CorpusEmbeddings(
        fast_document_encoder(base.load_path, model), corpus, show_progress_bar=config.show_progress_bar
    )
    with state.main_process_first():
        train_dataset = prepare_train_dataset(config, data, catalog, corpus, model, base, base_corpus)

    # 3. Define the loss: in-batch negatives plus the mined ones
    loss = make_loss(model, config)

    # 4. Specify the training arguments (no duplicate texts in a batch: they would be false negatives)
    args = training_arguments(config, model, train_dataset)

    # 5. Create the evaluator (one per language plus the mean) and evaluate the base model
    evaluator = make_evaluator(config, data, corpus, model)
    base_results = evaluate_base(
        evaluator, model, config, base, data, base_corpus, is_main_process=state.is_main_process
    )

    # 6. Create the trainer and train
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=train_dataset, loss=loss, evaluator=evaluator, callbacks=callbacks
    )
    checkpoint = resume_checkpoint(config)
    train_output = trainer.train(resume_from_checkpoint=checkpoint)
    if not trainer.is_world_process_zero():
        return {}

    # 7. Save the model (and its ONNX files) to models/<run_name>/final, encode its code index with the fastest of
    #    them, evaluate the trained model on that index
    staging = save_model(model, config)
    index = None
    if config.build_index:
        index = make_code_index(model, catalog, config, data, encoder=fast_document_encoder(staging, model))
    trained_results = evaluator(model, corpus_embeddings=index_rows(index, corpus, model.device) if index else None)
    summary = run_summary(
        config,
        base,
        data,
        catalog,
        corpus,
        evaluator,
        base_results,
        trained_results,
        train_output,
        trainer,
        parameters,
        index,
        checkpoint,
        started,
    )
    save_final(staging, config, base, index, summary)
    run_dir = promote_run(config)

    # 8. Push to the Hub (the local one by default)
    if config.push:
        summary["published"] = publish(config)
    summary["wall_time_s"] = round(time.perf_counter() - started, 1)
    write_json_atomic(run_dir / SUMMARY_FILE, summary)
    log_result(summary)
    return summary


# ---------------------------------------------------------------------------------------------- 1. model
def load_model(config: BiEncoderConfig, base: BaseModelInfo, data: training_data.TrainingData) -> tuple[Any, dict]:
    """The base model as a SentenceTransformer with card data, capped and (on request) partly frozen."""
    from sentence_transformers import SentenceTransformer, SentenceTransformerModelCardData

    card = SentenceTransformerModelCardData(
        language=card_languages(data),
        license=config.license or base.license,
        model_name=f"cie10 bi-encoder for ICD-10-CM codes, fine-tuned from {base.hub_id or base.name}",
        train_datasets=[dataset_card_entry(data)],
        local_files_only=True,  # the card keeps the ids as given; no Hub look-up during training
        tags=["cie10", "icd-10-cm", "medical", "multilingual"],
    )
    model = load_base_model(SentenceTransformer, base, model_card_data=card)
    if base.hub_id:
        model.model_card_data.base_model = base.hub_id
    model.max_seq_length = config.max_seq_length
    parameters = freeze_for_cpu(model, freeze_embeddings=config.freeze_embeddings, freeze_layers=config.freeze_layers)
    return model, parameters


# ---------------------------------------------------------------------------------------------- 2. data
def prepare_train_dataset(
    config: BiEncoderConfig,
    data: training_data.TrainingData,
    catalog: Catalog,
    corpus: list[CodeEntry],
    model: Any,
    base: BaseModelInfo,
    base_corpus: CorpusEmbeddings,
) -> Any:
    """(query, positive, negative_1..n), text columns only; cached in the run folder (resume reuses it)."""
    key = training_data.cache_key(
        dataset=data.dataset_id,
        revision=data.revision,
        languages=config.languages,
        scope=config.scope,
        chapters=config.chapters,
        rows=config.max_train_samples,
        seed=config.seed,
        base=base.load_path,
        **({"name_rows": config.max_name_rows} if config.max_name_rows else {}),  # older caches stay valid
        negatives=config.num_hard_negatives,
        range_max=config.mining_range_max,
        margin=config.mining_relative_margin,
        siblings=config.sibling_fallback,
        max_len=config.max_seq_length,
        **({"kinds": config.train_kinds} if config.train_kinds else {}),  # older caches stay valid without it
    )
    folder = config.run_dir / "prepared" / "train"
    cached = training_data.load_cached_dataset(folder, key)
    if cached is not None:
        logger.info("training rows: %d (prepared earlier, %s)", len(cached), folder)
        return cached
    split = training_data.restrict_to_codes(data.splits["train"], {entry.code for entry in corpus})
    split = training_data.restrict_to_kinds(split, config.train_kinds)
    split = training_data.cap_name_rows(split, config.max_name_rows, config.seed)
    split = training_data.sample_rows(split, config.max_train_samples, config.seed)
    logger.info(
        "mining %d hard negative(s) for %d rows among %d titles", config.num_hard_negatives, len(split), len(corpus)
    )
    dataset = training_data.mine_negatives(
        split,
        catalog,
        corpus,
        model,
        num_negatives=config.num_hard_negatives,
        range_max=config.mining_range_max,
        relative_margin=config.mining_relative_margin,
        sibling_fallback=config.sibling_fallback,
        corpus_embeddings=base_corpus.get() if config.num_hard_negatives > 0 else None,
        seed=config.seed,
        show_progress_bar=config.show_progress_bar,
    )
    training_data.save_cached_dataset(dataset, folder, key)
    logger.info("training rows: %d, columns %s", len(dataset), dataset.column_names)
    return dataset


# ---------------------------------------------------------------------------------------------- 3. loss
def make_loss(model: Any, config: BiEncoderConfig) -> Any:
    """MultipleNegativesRankingLoss, or its cached variant for batches larger than memory allows."""
    from sentence_transformers.sentence_transformer import losses

    if config.loss == "cached_mnrl":
        return losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=config.mini_batch_size)
    return losses.MultipleNegativesRankingLoss(model)


# ---------------------------------------------------------------------------------------------- 4. arguments
def training_arguments(config: BiEncoderConfig, model: Any, train_dataset: Any) -> Any:
    """SentenceTransformerTrainingArguments: no-duplicates batches and the model's query/document prompts."""
    from sentence_transformers import SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers

    prompts = getattr(model, "prompts", None) or {}
    column_prompts: dict[str, str] = {}
    for column in train_dataset.column_names:
        wanted = QUERY_PROMPT_NAME if column == "query" else DOCUMENT_PROMPT_NAME
        if prompts.get(wanted):
            column_prompts[column] = prompts[wanted]
    return SentenceTransformerTrainingArguments(
        **trainer_arguments(config),
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        prompts=column_prompts or None,
    )


# ---------------------------------------------------------------------------------------------- 5. evaluator
def make_evaluator(
    config: BiEncoderConfig, data: training_data.TrainingData, corpus: list[CodeEntry], model: Any
) -> MeanOverLanguagesEvaluator:
    """IR evaluators per language on the held-out split, over every title of the corpus."""
    if config.eval_split not in data.splits:
        raise ConfigError(f"the dataset has no {config.eval_split!r} split: {list(data.splits)}")
    split = training_data.restrict_to_codes(data.splits[config.eval_split], {entry.code for entry in corpus})
    languages = config.languages or data.languages
    queries = training_data.eval_queries(split, languages, config.max_eval_queries, config.seed)
    return retrieval_evaluator(queries, corpus, model, show_progress_bar=config.show_progress_bar)


def evaluate_base(
    evaluator: MeanOverLanguagesEvaluator,
    model: Any,
    config: BiEncoderConfig,
    base: BaseModelInfo,
    data: training_data.TrainingData,
    base_corpus: CorpusEmbeddings,
    *,
    is_main_process: bool = True,
) -> dict[str, float]:
    """The base model's scores before any training (cached: a resumed run does not measure them again)."""
    key = training_data.cache_key(
        base=base.load_path,
        revision=data.revision,
        split=config.eval_split,
        languages=evaluator.languages,
        scope=config.scope,
        chapters=config.chapters,
        queries=config.max_eval_queries,
        seed=config.seed,
        max_len=config.max_seq_length,
    )
    return evaluate_once(
        lambda: evaluator(model, corpus_embeddings=base_corpus.tensor()),
        config.run_dir / "base_eval.json",
        key,
        is_main_process=is_main_process,
    )


# ---------------------------------------------------------------------------------------------- 7. save
def fast_document_encoder(folder: str | Path, model: Any) -> Any:
    """The ONNX (fp32) encoder of the local model `folder` when it has one (a worker per core encodes many texts),
    else `model` itself: the corpus and the code index are the two big encodes of a run."""
    if (Path(folder) / FP32_FILE).is_file():
        from cie10.inference.encoder import load_encoder

        logger.info("large encodes with the ONNX export of %s", folder)
        return load_encoder(str(folder), backend="onnx")
    return model


def make_code_index(
    model: Any, catalog: Catalog, config: BiEncoderConfig, data: Any = None, *, encoder: Any = None
) -> CodeIndex:
    """Every name (`config.index_names`) of the scope's codes encoded once by the trained model (resumable);
    `encoder` (default `model`) does the encoding, e.g. the model's ONNX export."""
    work_dir = config.run_dir / "index-work" / parameters_fingerprint(model)
    logger.info(
        "code index: encoding the %s scope (%s), names %s", config.scope, SCOPES[config.scope], config.index_names
    )
    examples = extra_names = None
    if config.index_names != "title":
        from cie10.generation.translate import index_names

        extra_names = index_names(catalog, training_data.corpus_entries(catalog, config.scope, None))
    if config.index_names == "all+examples" and data is not None:
        rows = data.splits["train"]
        if config.index_example_languages:
            wanted = set(config.index_example_languages)
            rows = [row for row in rows if row.get("language") in wanted]
        examples = examples_from_rows(rows, catalog)
    index = build_code_index(
        encoder if encoder is not None else model,
        catalog,
        config.scope,
        names=config.index_names,
        extra_names=extra_names,
        examples=examples,
        model_id=config.repo_id,
        work_dir=work_dir,
        batch_size=config.index_batch_size,
    )
    index.meta["run_name"] = config.run_name
    index.meta["weights_fingerprint"] = work_dir.name
    if config.index_names == "all+examples" and data is not None:
        from cie10.generation.codiesp_source import codiesp_root
        from cie10.known_mentions import known_mentions_of

        index.known = known_mentions_of(data, catalog, codiesp_root())
        index.meta["known_mentions"] = index.known.meta
    return index


def index_rows(index: CodeIndex, corpus: list[CodeEntry], device: Any) -> Any:
    """The index's embeddings of the corpus codes, in corpus order (the final evaluation reuses them)."""
    import torch

    rows = [index.row_of[entry.code] for entry in corpus]
    return torch.from_numpy(index.embeddings[rows].astype("float32")).to(device)


def save_model(model: Any, config: BiEncoderConfig) -> Path:
    """The trained model (and its ONNX export) in a staging folder beside `models/<run_name>/final`."""
    staging = staging_dir(config.final_dir)
    model.save_pretrained(str(staging))
    if config.export_onnx:
        from cie10.inference.export import export_onnx

        export_onnx(staging)
    return staging


def save_final(
    staging: Path, config: BiEncoderConfig, base: BaseModelInfo, index: CodeIndex | None, summary: dict[str, Any]
) -> Path:
    """Complete the staged model (code index, card with the base model's provenance, summary) and put it in place
    as `models/<run_name>/final`."""
    final = config.final_dir
    if index is not None:
        index.save(staging)
    scope_line = f"- **Code index:** `code_index/` holds {summary['catalog']['num_codes']} code titles "
    scope_line += f"({summary['catalog']['version']}, scope `{config.scope}`) encoded by this model."
    append_provenance(staging / "README.md", base, scope_line if index is not None else "")
    write_json_atomic(staging / SUMMARY_FILE, summary)
    swap_into_place(staging, final)
    shutil.rmtree(config.run_dir / "index-work", ignore_errors=True)
    logger.info("saved %s", final)
    return final


def run_summary(
    config: BiEncoderConfig,
    base: BaseModelInfo,
    data: training_data.TrainingData,
    catalog: Catalog,
    corpus: list[CodeEntry],
    evaluator: MeanOverLanguagesEvaluator,
    base_results: dict[str, float],
    trained_results: dict[str, float],
    train_output: Any,
    trainer: Any,
    parameters: dict[str, int],
    index: CodeIndex | None,
    checkpoint: str | None,
    started: float,
) -> dict[str, Any]:
    """Metrics per language before and after, data revision, base model, training figures, wall time."""
    before, after = evaluator.per_language(base_results), evaluator.per_language(trained_results)
    primary = evaluator.primary_metric[len(evaluator.name) + 1 :] if evaluator.primary_metric else "cosine_mrr@10"
    metrics = train_output.metrics
    return {
        "kind": "bi-encoder",
        "run_name": config.run_name,
        "created_at": now_iso(),
        "wall_time_s": round(time.perf_counter() - started, 1),
        "base_model": base.to_dict(),
        "dataset": {**data.provenance(), "eval_split": config.eval_split, "languages": evaluator.languages},
        "catalog": {
            "version": catalog.version,
            "scope": config.scope,
            "scope_description": SCOPES[config.scope],
            "chapters": config.chapters,
            "num_codes": len(index) if index is not None else len(corpus),
            "eval_corpus_codes": len(corpus),
        },
        "main_metric": primary,
        "metrics": {"base": before, "trained": after, "gain": gains(before, after, primary)},
        "training": {
            "global_step": trainer.state.global_step,
            "resumed_from": checkpoint,
            "train_loss": metrics.get("train_loss"),
            "train_runtime_s": metrics.get("train_runtime"),
            "train_samples_per_second": metrics.get("train_samples_per_second"),
            "torch_threads": get_settings().torch_threads,
            **parameters,
        },
        "code_index": index.meta if index is not None else None,
        "config": config.to_dict(),
        "versions": library_versions(),
        "git_commit": git_commit(),
    }


def log_result(summary: dict[str, Any]) -> None:
    """One line per language: base -> trained main metric."""
    metric = summary["main_metric"]
    for language, scores in summary["metrics"]["trained"].items():
        before = summary["metrics"]["base"].get(language, {}).get(metric, float("nan"))
        logger.info("%-5s %s: %.4f -> %.4f", language, metric, before, scores.get(metric, float("nan")))
    logger.info("run summary: %s", Path(summary["config"]["output_dir"]) / summary["run_name"] / SUMMARY_FILE)
