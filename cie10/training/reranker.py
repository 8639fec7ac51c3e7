"""`cie10 train reranker`: fine-tune a cross-encoder to reorder the bi-encoder's shortlist.

Training groups: for each training mention, its code's title (label 1) with the bi-encoder's top candidates and
the generator's named sibling codes (label 0), learned with a listwise loss (LambdaLoss or ListNet). Held-out
groups are the bi-encoder's top K in its own order, so `CrossEncoderRerankingEvaluator` reports Base (the
bi-encoder's order) -> Reranked. The recipe has the same eight steps as `cie10.training.bi_encoder`.
"""

from __future__ import annotations

import json
import logging
import random
import time
from pathlib import Path
from typing import Any

from cie10.catalog import SCOPES, Catalog, CodeEntry, load_catalog
from cie10.code_index import CodeIndex, document_text, encode_documents
from cie10.errors import ConfigError
from cie10.fusion import choose_and_check, write_fusion
from cie10.settings import apply_torch_threads, get_settings
from cie10.training import data as training_data
from cie10.training.config import RerankerConfig
from cie10.training.evaluation import MeanOverLanguagesEvaluator, reranking_evaluator
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
    prepare_run_dir,
    promote_run,
    publish,
    resume_checkpoint,
    staging_dir,
    swap_into_place,
    trainer_arguments,
)
from cie10.training.summary import (
    SUMMARY_FILE,
    git_commit,
    library_versions,
    now_iso,
    read_json,
    write_json_atomic,
)

logger = logging.getLogger(__name__)

HEAD_PARAMETERS = r"(^|\.)(classifier|pooler)\."
"""Parameter names of the sequence-classification head that `CrossEncoder(base, num_labels=1)` adds."""


def train_reranker(config: RerankerConfig, *, callbacks: list[Any] | None = None) -> dict[str, Any]:
    """Run the whole recipe; returns the run summary (also written to `models/<run_name>/run_summary.json`)."""
    from accelerate import PartialState
    from sentence_transformers.cross_encoder import CrossEncoderTrainer

    started = time.perf_counter()
    apply_torch_threads()
    state = PartialState()
    check_inputs(config)  # nothing is written before every input is found
    catalog = load_catalog()
    corpus = training_data.corpus_entries(catalog, config.scope, config.chapters)
    announce_scope(config, corpus)

    # 1. Load the model to fine-tune (a cross-encoder with one output), with the data for its card
    data = training_data.load_training_data(config.dataset_id, config.dataset_revision, config.languages)
    base = describe_base_model(config.base_model)
    model, parameters = load_model(config, base, data)
    run_dir = prepare_run_dir(config, is_main_process=state.is_main_process)

    # 2. Load the data: groups of the bi-encoder's candidates plus named siblings, and held-out groups
    with state.main_process_first():
        train_dataset, eval_samples = prepare_groups(config, data, catalog, corpus)

    # 3. Define the loss: listwise, over each group
    loss = make_loss(model, config)

    # 4. Specify the training arguments
    args = training_arguments(config)

    # 5. Create the evaluator (Base = the bi-encoder's order -> Reranked, per language) and run it on the base model
    evaluator = reranking_evaluator(eval_samples, at_k=10, batch_size=64, show_progress_bar=config.show_progress_bar)
    key = training_data.cache_key(base=base.load_path, groups=groups_key(config, data), max_len=config.max_seq_length)
    base_results = evaluate_once(
        lambda: evaluator(model), run_dir / "base_eval.json", key, is_main_process=state.is_main_process
    )

    # 6. Create the trainer and train
    trainer = CrossEncoderTrainer(
        model=model, args=args, train_dataset=train_dataset, loss=loss, evaluator=evaluator, callbacks=callbacks
    )
    checkpoint = resume_checkpoint(config)
    train_output = trainer.train(resume_from_checkpoint=checkpoint)
    if not trainer.is_world_process_zero():
        return {}

    # 7. Evaluate the trained reranker, choose how much of the bi-encoder's score its order keeps (held-out split),
    #    and save both to models/<run_name>/final
    trained_results = evaluator(model)
    fusion = choose_fusion(model, eval_samples)
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
        len(train_dataset),
        checkpoint,
        started,
    )
    summary["fusion"] = fusion
    save_final(model, config, base, summary, fusion)
    run_dir = promote_run(config)

    # 8. Push to the Hub (the local one by default)
    if config.push:
        summary["published"] = publish(config)
    summary["wall_time_s"] = round(time.perf_counter() - started, 1)
    write_json_atomic(run_dir / SUMMARY_FILE, summary)
    log_result(summary)
    return summary


# ---------------------------------------------------------------------------------------------- 1. model
def load_model(config: RerankerConfig, base: BaseModelInfo, data: training_data.TrainingData) -> tuple[Any, dict]:
    """The base model as a one-output CrossEncoder with card data, capped and (on request) partly frozen."""
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderModelCardData

    card = CrossEncoderModelCardData(
        language=card_languages(data),
        license=config.license or base.license,
        model_name=f"cie10 reranker for ICD-10-CM codes, fine-tuned from {base.hub_id or base.name}",
        train_datasets=[dataset_card_entry(data)],
        local_files_only=True,
        tags=["cie10", "icd-10-cm", "medical", "multilingual", "reranker"],
    )
    model = load_base_model(CrossEncoder, base, num_labels=1, model_card_data=card)
    if base.hub_id:
        model.model_card_data.base_model = base.hub_id
    model.max_seq_length = config.max_seq_length
    parameters = freeze_for_cpu(model, freeze_embeddings=config.freeze_embeddings, freeze_layers=config.freeze_layers)
    return model, parameters


# ---------------------------------------------------------------------------------------------- 2. data
def bi_encoder_revision(config: RerankerConfig) -> str:
    """What identifies the candidate generator: a local folder's weights file, or the Hub revision asked for."""
    folder = Path(config.bi_encoder_id)
    if folder.is_dir():
        weights = next(iter(sorted(folder.glob("*.safetensors"))), None)
        if weights is None:
            return "local"
        stat = weights.stat()
        return f"local-{stat.st_size}-{int(stat.st_mtime)}"
    return config.bi_encoder_revision or "main"


def groups_key(config: RerankerConfig, data: training_data.TrainingData) -> str:
    """Everything the groups depend on."""
    return training_data.cache_key(
        bi_encoder=config.bi_encoder_id,
        bi_revision=bi_encoder_revision(config),
        dataset=data.dataset_id,
        revision=data.revision,
        languages=config.languages,
        scope=config.scope,
        chapters=config.chapters,
        rows=config.max_train_samples,
        seed=config.seed,
        candidates=config.candidates,
        siblings=config.sibling_negatives,
        eval_split=config.eval_split,
        eval_queries=config.max_eval_queries,
        eval_top_k=config.eval_top_k,
        kinds=config.train_kinds,
        **({"name_rows": config.max_name_rows} if config.max_name_rows else {}),  # older caches stay valid
        held_out_format=2,  # held-out groups carry the bi-encoder's scores (fusion)
    )


def prepare_groups(
    config: RerankerConfig, data: training_data.TrainingData, catalog: Catalog, corpus: list[CodeEntry]
) -> tuple[Any, dict[str, list[dict[str, Any]]]]:
    """(query, docs, labels) training groups and per-language held-out samples; cached in the run folder."""
    key = groups_key(config, data)
    folder = config.run_dir / "prepared"
    cached = training_data.load_cached_dataset(folder / "train", key)
    cached_eval = read_json(folder / "eval_groups.json")
    if cached is not None and cached_eval and cached_eval.get("key") == key:
        logger.info("training groups: %d (prepared earlier, %s)", len(cached), folder)
        return cached, cached_eval["samples"]

    searcher = candidate_searcher(config, catalog, corpus)
    codes = {entry.code for entry in corpus}
    split = training_data.restrict_to_codes(data.splits["train"], codes)
    split = training_data.restrict_to_kinds(split, config.train_kinds)
    split = training_data.cap_name_rows(split, config.max_name_rows, config.seed)
    split = training_data.sample_rows(split, config.max_train_samples, config.seed)
    train_dataset = training_groups(split, catalog, searcher, config)

    if config.eval_split not in data.splits:
        raise ConfigError(f"the dataset has no {config.eval_split!r} split: {list(data.splits)}")
    held_out = training_data.restrict_to_codes(data.splits[config.eval_split], codes)
    languages = config.languages or data.languages
    queries = training_data.eval_queries(held_out, languages, config.max_eval_queries, config.seed)
    eval_samples = held_out_groups(queries, catalog, searcher, config.eval_top_k)

    training_data.save_cached_dataset(train_dataset, folder / "train", key)
    write_json_atomic(folder / "eval_groups.json", {"key": key, "samples": eval_samples})
    return train_dataset, eval_samples


def candidate_searcher(config: RerankerConfig, catalog: Catalog, corpus: list[CodeEntry]) -> Any:
    """A `CodeSearcher` over the corpus with the bi-encoder (its published code index when it covers the scope)."""
    from sentence_transformers import SentenceTransformer

    from cie10.search import CodeSearcher

    model_id = config.bi_encoder_id
    logger.info("candidates from the bi-encoder %s", model_id)
    try:
        bi_encoder = SentenceTransformer(model_id, revision=config.bi_encoder_revision)
    except OSError as error:
        raise ConfigError(
            f"cannot load the bi-encoder {model_id!r} (train one with `cie10 train bi-encoder` or pass --bi_encoder)"
        ) from error
    index = _published_index(model_id, config.bi_encoder_revision, config.scope)
    codes = [entry.code for entry in corpus]
    if index is not None and all(code in index.row_of for code in codes):
        index = index.subset(codes)  # every name the bi-encoder's index holds for these codes
    else:
        logger.info("encoding the %d corpus titles with the bi-encoder", len(corpus))
        embeddings = encode_documents(
            bi_encoder, [document_text(entry) for entry in corpus], show_progress_bar=config.show_progress_bar
        )
        index = CodeIndex(codes, embeddings, {"model": model_id, "scope": config.scope, "chapters": config.chapters})
    # the bi-encoder's own candidates: a verbatim known mention would hand the reranker its answer
    return CodeSearcher(bi_encoder, index, catalog=catalog, known_mentions=False)


def _published_index(model_id: str, revision: str | None, scope: str) -> CodeIndex | None:
    """The bi-encoder's `code_index/` when it exists for `scope` (saves encoding the catalogue again)."""
    try:
        index = CodeIndex.load(Path(model_id)) if Path(model_id).is_dir() else CodeIndex.from_hub(model_id, revision)
    except Exception:  # no index published with this model: encode the corpus instead
        return None
    return index if index.meta.get("scope") == scope else None


def training_groups(split: Any, catalog: Catalog, searcher: Any, config: RerankerConfig) -> Any:
    """One group per mention: the gold title (1), the bi-encoder's top candidates and named siblings (0)."""
    import datasets

    rows = list(split)
    results = searcher.search_many([row["query"] for row in rows], top_k=config.candidates + 1, rerank=False)
    rng = random.Random(config.seed)
    groups: dict[str, list] = {"query": [], "docs": [], "labels": []}
    for row, result in zip(rows, results, strict=True):
        gold = document_text(catalog[row["code"]])
        negatives = [document_text(catalog[hit.code]) for hit in result.hits if hit.code != row["code"]]
        negatives = [title for title in dict.fromkeys(negatives) if title != gold][: config.candidates]
        siblings = [document_text(catalog[c]) for c in training_data.sibling_codes(row, catalog)]
        siblings = [title for title in dict.fromkeys(siblings) if title != gold and title not in negatives]
        negatives += rng.sample(siblings, min(config.sibling_negatives, len(siblings)))
        if not negatives:
            continue
        docs = [(gold, 1)] + [(title, 0) for title in negatives]
        rng.shuffle(docs)
        groups["query"].append(row["query"])
        groups["docs"].append([title for title, _ in docs])
        groups["labels"].append([label for _, label in docs])
    logger.info(
        "training groups: %d (%.1f documents each)",
        len(groups["query"]),
        sum(map(len, groups["docs"])) / max(1, len(groups["docs"])),
    )
    return datasets.Dataset.from_dict(groups)


def held_out_groups(
    queries: dict[str, tuple[dict[str, str], dict[str, set[str]]]], catalog: Catalog, searcher: Any, top_k: int
) -> dict[str, list[dict[str, Any]]]:
    """Per language: `{"query", "positive": gold titles, "documents": the bi-encoder's top K in its order}`."""
    samples: dict[str, list[dict[str, Any]]] = {}
    for language, (language_queries, relevant) in queries.items():
        qids = list(language_queries)
        results = searcher.search_many([language_queries[qid] for qid in qids], top_k=top_k, rerank=False)
        samples[language] = []
        for qid, result in zip(qids, results, strict=True):
            best_score: dict[str, float] = {}  # the bi-encoder's score of each title, first (best) hit kept
            for hit in result.hits:
                best_score.setdefault(document_text(catalog[hit.code]), hit.score)
            samples[language].append(
                {
                    "query": language_queries[qid],
                    "positive": sorted({document_text(catalog[code]) for code in relevant[qid]}),
                    "documents": list(best_score),
                    "bi_scores": list(best_score.values()),
                }
            )
    return samples


# ---------------------------------------------------------------------------------------------- 3. loss
def make_loss(model: Any, config: RerankerConfig) -> Any:
    """LambdaLoss (NDCG-Loss2++ weighting) or ListNetLoss: both take (query, [docs], [labels]) groups."""
    from sentence_transformers.cross_encoder import losses

    if config.loss == "listnet":
        return losses.ListNetLoss(model, mini_batch_size=config.mini_batch_size)
    return losses.LambdaLoss(model, mini_batch_size=config.mini_batch_size)


# ---------------------------------------------------------------------------------------------- 4. arguments
def training_arguments(config: RerankerConfig) -> Any:
    """CrossEncoderTrainingArguments; the scoring head, new and random, learns faster than the encoder."""
    from sentence_transformers.cross_encoder import CrossEncoderTrainingArguments

    mapping = {}
    if config.head_learning_rate is not None:
        mapping[HEAD_PARAMETERS] = config.head_learning_rate
    return CrossEncoderTrainingArguments(**trainer_arguments(config), learning_rate_mapping=mapping)


# ---------------------------------------------------------------------------------------------- 7. save
def choose_fusion(model: Any, eval_samples: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The `bi_weight` (`cie10.fusion`) with the best MRR@10 on half the held-out groups of every language, checked
    against the bi-encoder's order on the other half (`choose_and_check`)."""
    samples = [sample for language_samples in eval_samples.values() for sample in language_samples]
    pairs = [(sample["query"], document) for sample in samples for document in sample["documents"]]
    scores = iter(model.predict(pairs, batch_size=64, show_progress_bar=False)) if pairs else iter(())
    shortlists = []
    for sample in samples:
        rerank_scores = [float(next(scores)) for _ in sample["documents"]]
        relevant = [document in sample["positive"] for document in sample["documents"]]
        shortlists.append({"rerank_scores": rerank_scores, "bi_scores": sample["bi_scores"], "relevant": relevant})
    choice = choose_and_check(shortlists)
    choice["chosen_on"] = (
        "half the held-out groups of the reranker's evaluation (the dataset's evaluation split), checked on the "
        "other half"
    )
    return choice


def save_final(
    model: Any, config: RerankerConfig, base: BaseModelInfo, summary: dict[str, Any], fusion: dict[str, Any]
) -> Path:
    """Write `models/<run_name>/final`: model, fusion weight, card (with the base model's provenance), summary."""
    final = config.final_dir
    staging = staging_dir(final)
    model.save_pretrained(str(staging))
    write_fusion(staging, fusion)
    extra = f"- **Candidates at training:** the bi-encoder `{config.bi_encoder_id}` ({config.candidates} per group)"
    append_provenance(staging / "README.md", base, extra)
    write_json_atomic(staging / SUMMARY_FILE, summary)
    if config.export_onnx:
        from cie10.inference.export import export_onnx

        export_onnx(staging)
    swap_into_place(staging, final)
    logger.info("saved %s", final)
    return final


def run_summary(
    config: RerankerConfig,
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
    train_groups: int,
    checkpoint: str | None,
    started: float,
) -> dict[str, Any]:
    """Per language: the bi-encoder's order, the untrained and the trained reranker; provenance; wall time."""
    before, after = evaluator.per_language(base_results), evaluator.per_language(trained_results)
    metric = "mrr@10"
    table = {
        language: {
            "bi_encoder_order": after[language].get(f"base_{metric}"),
            "reranker_before_training": before.get(language, {}).get(metric),
            "reranked": after[language].get(metric),
            "gain_over_bi_encoder": round(after[language][metric] - after[language][f"base_{metric}"], 4)
            if metric in after[language] and f"base_{metric}" in after[language]
            else None,
        }
        for language in after
    }
    metrics = train_output.metrics
    return {
        "kind": "reranker",
        "run_name": config.run_name,
        "created_at": now_iso(),
        "wall_time_s": round(time.perf_counter() - started, 1),
        "base_model": base.to_dict(),
        "bi_encoder": {"id": config.bi_encoder_id, "revision": bi_encoder_revision(config)},
        "dataset": {**data.provenance(), "eval_split": config.eval_split, "languages": evaluator.languages},
        "catalog": {
            "version": catalog.version,
            "scope": config.scope,
            "scope_description": SCOPES[config.scope],
            "chapters": config.chapters,
            "num_codes": len(corpus),
        },
        "main_metric": metric,
        "metrics": {"summary": table, "base": before, "trained": after},
        "training": {
            "global_step": trainer.state.global_step,
            "resumed_from": checkpoint,
            "train_groups": train_groups,
            "train_loss": metrics.get("train_loss"),
            "train_runtime_s": metrics.get("train_runtime"),
            "train_samples_per_second": metrics.get("train_samples_per_second"),
            "torch_threads": get_settings().torch_threads,
            **parameters,
        },
        "config": config.to_dict(),
        "versions": library_versions(),
        "git_commit": git_commit(),
    }


def log_result(summary: dict[str, Any]) -> None:
    """One line per language: bi-encoder order -> reranked."""
    metric = summary["main_metric"]
    for language, row in summary["metrics"]["summary"].items():
        logger.info(
            "%-5s %s: bi-encoder %.4f -> reranked %.4f",
            language,
            metric,
            row["bi_encoder_order"] or 0.0,
            row["reranked"] or 0.0,
        )
    logger.info("run summary: %s", json.dumps(str(Path(summary["config"]["output_dir"]) / summary["run_name"])))
