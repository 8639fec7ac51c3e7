"""Tiny release artifacts, made the way the real stages make them, in seconds.

- models: a one-layer, 32-dimension BERT with a small WordPiece vocabulary, as a sentence-transformers folder
  (bi-encoder, with a `code_index/` over chapter 10's categories) or a one-output cross-encoder, each with a
  `run_summary.json` naming the embedded base model as `cie10 train` does;
- the synthetic dataset: the generator's own `terminology` pairs and `write_synth_dataset`, chapter 10 only;
- harness results: `cie10.eval_harness.runner.evaluate_systems` on those models and BM25 (real runs, tiny inputs);
- a Space folder with an `app.py` and a card.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

CHAPTER = "10"
SCOPE = "categories"
DIMENSION = 32
VOCABULARY = 2000
SPECIAL_TOKENS = {
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
}


def searched_codes(catalog) -> list[str]:
    """The codes every tiny system searches and every tiny index holds: chapter 10's categories (64)."""
    from cie10.eval_harness.systems import select_codes

    return select_codes(catalog, SCOPE, chapters=[CHAPTER])


def _tiny_bert(catalog, folder: Path, seed: int) -> Path:
    """A randomly initialised one-layer BERT with a WordPiece vocabulary of chapter 10's labels (~1 MB)."""
    import torch
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertModel

    texts = [label.text for entry in catalog if entry.chapter == CHAPTER for label in entry.labels]
    tokenizer = BertWordPieceTokenizer(lowercase=True, strip_accents=True)
    tokenizer.train_from_iterator(texts, vocab_size=VOCABULARY, special_tokens=list(SPECIAL_TOKENS.values()))
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    config = {"tokenizer_class": "TokenizersBackend", "model_max_length": 64, **SPECIAL_TOKENS}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    torch.manual_seed(seed)
    bert = BertConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=DIMENSION,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=tokenizer.token_to_id(SPECIAL_TOKENS["pad_token"]),
    )
    BertModel(bert).save_pretrained(str(folder))
    return folder


def run_summary(kind: str, run_name: str, base_model_path: Path, dataset: Path) -> dict[str, Any]:
    """The fields of `cie10 train`'s `run_summary.json` that the cards read."""
    from cie10.embedded_model import EMBEDDED_MODEL_DESCRIPTION, ORIGINAL_LICENSE, ORIGINAL_MODEL_ID

    return {
        "kind": kind,
        "run_name": run_name,
        "created_at": "2026-11-25T12:00:00+00:00",
        "base_model": {
            "name": "default",
            "load_path": str(base_model_path),
            "hub_id": ORIGINAL_MODEL_ID,
            "license": ORIGINAL_LICENSE,
            "description": EMBEDDED_MODEL_DESCRIPTION,
        },
        "dataset": {"id": str(dataset), "revision": "local-0123456789abcdef", "eval_split": "validation"},
        "training": {"global_step": 3, "train_loss": 1.25},
        "git_commit": None,
    }


def make_bi_encoder(
    base_model_path: Path, folder: Path, catalog, dataset: Path, *, seed: int, trained_card: bool
) -> Path:
    """A tiny bi-encoder folder: model, README (a training card when `trained_card`), code index, run summary."""
    from sentence_transformers import SentenceTransformer, SentenceTransformerModelCardData
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    from cie10.code_index import CodeIndex, encode_documents
    from cie10.embedded_model import PROMPTS

    hf_dir = _tiny_bert(catalog, folder.with_name(folder.name + "-hf"), seed)
    transformer = Transformer(str(hf_dir), max_seq_length=64)
    card = SentenceTransformerModelCardData(
        language=["en", "es"], license="mit", local_files_only=True, generate_widget_examples=False
    )
    model = SentenceTransformer(
        modules=[transformer, Pooling(DIMENSION, "mean"), Normalize()],
        prompts=PROMPTS,
        similarity_fn_name="cosine",
        device="cpu",
        model_card_data=card,
    )
    if trained_card:  # what the trainer leaves on the card data
        model.model_card_data.add_tags("generated_from_trainer")
        model.model_card_data.all_hyperparameters = {"learning_rate": 0.0001, "per_device_train_batch_size": 16}
        model.model_card_data.non_default_hyperparameters = {"learning_rate": 0.0001}
    model.save_pretrained(str(folder))
    if not trained_card:
        (folder / "README.md").unlink(missing_ok=True)
    codes = searched_codes(catalog)
    embeddings = encode_documents(model, [catalog[code].title for code in codes])
    meta = {
        "model": folder.name,
        "catalog_version": catalog.version,
        "scope": SCOPE,
        "num_codes": len(codes),
        "dimension": DIMENSION,
        "document": "English ICD-10-CM title, with the model's document prompt",
    }
    CodeIndex(codes, embeddings, meta).save(folder)
    summary = run_summary("bi-encoder", folder.parent.name, base_model_path, dataset)
    (folder / "run_summary.json").write_text(json.dumps(summary, indent=2))
    shutil.rmtree(hf_dir)
    return folder


def make_reranker(base_model_path: Path, folder: Path, catalog, dataset: Path, *, seed: int) -> Path:
    """A tiny one-output cross-encoder folder with a run summary (its README is sentence-transformers' own)."""
    import torch
    from sentence_transformers import CrossEncoder

    hf_dir = _tiny_bert(catalog, folder.with_name(folder.name + "-hf"), seed)
    torch.manual_seed(seed)
    CrossEncoder(str(hf_dir), num_labels=1, device="cpu").save_pretrained(str(folder))
    summary = run_summary("reranker", folder.parent.name, base_model_path, dataset)
    (folder / "run_summary.json").write_text(json.dumps(summary, indent=2))
    shutil.rmtree(hf_dir)
    return folder


def make_synth(folder: Path, catalog, languages: list[str], *, seed: int) -> Path:
    """The generator's `terminology` output for chapter 10's categories (`write_synth_dataset`)."""
    from cie10.generation.config import GenerationConfig
    from cie10.generation.curation import CurationReport
    from cie10.generation.dataset import write_synth_dataset
    from cie10.generation.splits import split_pairs
    from cie10.generation.terminology import terminology_pairs

    entries = [catalog[code] for code in searched_codes(catalog)]
    pairs = terminology_pairs(catalog, entries, languages)
    report = CurationReport(input_rows=len(pairs) + 1)
    report.drop("length", "shorter than 3 characters", text="ab")
    splits = split_pairs(pairs, catalog, validation_fraction=0.2, test_fraction=0.3, seed=seed, report=report)
    config = GenerationConfig(
        backend="terminology", languages=languages, scope=SCOPE, seed=seed, output_dir=str(folder)
    )
    return write_synth_dataset(splits, folder, config=config, catalog=catalog, curation=report)


def make_space(folder: Path, greeting: str) -> Path:
    """A Space folder: a thin `app.py` and its card."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "app.py").write_text(f'"""{greeting}"""\n\nfrom cie10.space_app import launch\n\nlaunch()\n')
    (folder / "README.md").write_text(
        "---\ntitle: cie10 search\nsdk: gradio\nsdk_version: 6.31.0\napp_file: app.py\n---\n\n# cie10 search\n"
    )
    return folder


def evaluate(catalog, synth: Path, bi: Path, reranker: Path, base: Path, out: Path, *, split_runs: bool) -> list[Path]:
    """Harness results for the four systems: one run (the bi-encoder as a baseline) or two (each evaluated)."""
    import datasets

    from cie10.eval_harness.data import from_records
    from cie10.eval_harness.runner import evaluate_systems
    from cie10.eval_harness.systems import bm25_system, dense_system

    codes = searched_codes(catalog)
    table = datasets.load_dataset(str(synth), "all", split="test")
    source = {"id": None, "path": str(synth.resolve()), "split": "test", "config": None, "revision": None}
    eval_set = from_records(table.select_columns(["query", "code", "language"]).to_list(), source)

    def systems(with_reranker: bool, bi_baseline: bool) -> list[Any]:
        pipeline = dense_system(
            "tiny-bi+tiny-rerank" if with_reranker else "tiny-bi",
            str(bi),
            catalog,
            codes,
            SCOPE,
            reranker_id=str(reranker) if with_reranker else None,
            rerank_top=10,
        )
        found = [pipeline, bm25_system("bm25", catalog, codes), dense_system("base", str(base), catalog, codes, SCOPE)]
        if bi_baseline:
            found.append(dense_system("tiny-bi", str(bi), catalog, codes, SCOPE))
        return found

    selection = {"scope": SCOPE, "billable_only": False, "chapters": [CHAPTER]}
    runs = [(True, False), (False, False)] if split_runs else [(True, True)]
    paths = []
    for number, (with_reranker, bi_baseline) in enumerate(runs):
        folder = out / f"run-{number}"
        evaluate_systems(
            eval_set,
            systems(with_reranker, bi_baseline),
            catalog=catalog,
            codes=codes,
            code_selection=selection,
            n_resamples=100,
            out=folder,
        )
        paths.append(folder / "results.json")
    return paths
