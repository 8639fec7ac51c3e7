"""One inference layer for both models: `tokenizers` + an onnxruntime session + the model's own pooling.

    encoder = load_encoder("cie10/cie10-bi", revision="v1.0", backend="onnx")
    encoder.encode(["dolor torácico"], prompt_name="query", normalize_embeddings=True)
    reranker = load_cross_encoder("cie10/cie10-rerank", revision="v1.0", backend="onnx")
    reranker.predict([("dolor torácico", "Chest pain, unspecified")])

The ONNX objects answer the calls the kit makes of `SentenceTransformer.encode` and `CrossEncoder.predict`, with
the same prompts (config_sentence_transformers.json), pooling (the Pooling module's config), normalisation and
activation, so `cie10.code_index` and `cie10.search` take either. The `torch` backend is sentence-transformers
itself. Nothing here imports torch unless the torch backend is asked for (fastembed's shape: a small process).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from cie10.errors import ConfigError
from cie10.fusion import FUSION_FILE, read_bi_weight
from cie10.inference.files import DATA_SUFFIX, ST_CONFIG_FILES, check_backend, local_files, pick_onnx_file
from cie10.settings import get_settings

logger = logging.getLogger(__name__)

DEFAULT_MAX_LENGTH = 512
RERANK_MAX_LENGTH = 96
"""Pairs (mention, code title) are cut at this many tokens (e5's tokenizer, measured): titles of the full catalogue
are at most 50 tokens (p99 39), CodiEsp train mentions at most 28 (p99 12), so every such pair fits in 82; 96
leaves room for longer typed queries, which `longest_first` truncation cuts first."""


# ------------------------------------------------------------------------------------------------ config


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


@dataclass
class ModelConfig:
    """What the ONNX path needs from a sentence-transformers folder: prompts, pooling, lengths, activation."""

    folder: Path
    model_type: str = "SentenceTransformer"
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    pooling: str = "mean"
    include_prompt: bool = True
    normalize: bool = False
    max_length: int = DEFAULT_MAX_LENGTH
    activation: str = "sigmoid"
    num_labels: int = 1
    pad_token: str = "<pad>"

    @classmethod
    def read(cls, folder: Path) -> ModelConfig:
        """Parse the folder's sentence-transformers and transformers configs."""
        folder = Path(folder)
        st = _read_json(folder / "config_sentence_transformers.json")
        hf = _read_json(folder / "config.json")
        tokenizer = _read_json(folder / "tokenizer_config.json")
        modules = _read_json(folder / "modules.json") or []
        config = cls(folder, model_type=st.get("model_type", "SentenceTransformer"))
        config.prompts = dict(st.get("prompts") or {})
        config.default_prompt_name = st.get("default_prompt_name")
        config.num_labels = int(hf.get("num_labels", len(hf.get("id2label") or {}) or 1))
        for module in modules:
            kind = module.get("type", "")
            if kind.endswith("Pooling"):
                pooling = _read_json(folder / module.get("path", "") / "config.json")
                config.pooling = _pooling_mode(pooling)
                config.include_prompt = bool(pooling.get("include_prompt", True))
            elif kind.endswith("Normalize"):
                config.normalize = True
        legacy = _read_json(folder / "sentence_bert_config.json").get("max_seq_length")
        length = int(legacy or tokenizer.get("model_max_length") or DEFAULT_MAX_LENGTH)
        config.max_length = min(length, int(hf.get("max_position_embeddings", DEFAULT_MAX_LENGTH)), 100_000)
        pad = tokenizer.get("pad_token")
        config.pad_token = pad.get("content") if isinstance(pad, dict) else (pad or "<pad>")
        config.activation = _activation(st, hf, config.num_labels)
        return config


def _pooling_mode(pooling: dict[str, Any]) -> str:
    if "pooling_mode" in pooling:
        mode = pooling["pooling_mode"]
        return mode if isinstance(mode, str) else "+".join(mode)
    legacy = {"pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean", "pooling_mode_max_tokens": "max"}
    modes = [name for key, name in legacy.items() if pooling.get(key)]
    return modes[0] if len(modes) == 1 else "+".join(modes) or "mean"


def _activation(st: dict[str, Any], hf: dict[str, Any], num_labels: int) -> str:
    """`sigmoid` or `identity`, as `CrossEncoder.get_default_activation_fn` resolves it."""
    path = (
        st.get("activation_fn")
        or (hf.get("sentence_transformers") or {}).get("activation_fn")
        or hf.get("sbert_ce_default_activation_function")
    )
    if path is None:
        return "sigmoid" if num_labels == 1 else "identity"
    name = path.rsplit(".", 1)[-1].lower()
    if name not in ("sigmoid", "identity"):
        raise ConfigError(f"activation {path} is not supported by the ONNX path: use --backend torch")
    return name


# ------------------------------------------------------------------------------------------------ session


_POOL_THREADS: int | None = None
_POOL_LOCK = threading.Lock()


def use_thread_pool(threads: int | None = None) -> int:
    """Size of the one onnxruntime intra-op thread pool that every session of this process shares.

    The first call (or the first session) sizes it: `threads`, else `CIE10_TORCH_THREADS`; later calls return that
    size. One shared pool, not one per session: a session's idle threads spin for a while after each run, and on 2
    cores they took a core from the next model of the same search (the reranker after the query encoder). Measured on
    v3.0's models, search + rerank of the top 20 (100 synthetic test queries, two threads, 3 runs each): one pool
    per session 147-155 ms p50, one shared pool 104-119 ms (docs/inference.md). A worker process sizes its pool
    before its first session (`cie10.inference.parallel`).
    """
    global _POOL_THREADS
    with _POOL_LOCK:
        if _POOL_THREADS is None:
            from onnxruntime.capi import _pybind_state

            _POOL_THREADS = max(1, threads or get_settings().torch_threads)
            _pybind_state.set_global_thread_pool_sizes(_POOL_THREADS, 1)
        return _POOL_THREADS


def make_session(path: Path | bytes):  # -> onnxruntime.InferenceSession
    """An onnxruntime CPU session (of a file, or of a serialized model) on the process's shared thread pool
    (`use_thread_pool`), every graph optimisation."""
    import onnxruntime as ort

    use_thread_pool()
    options = ort.SessionOptions()
    options.use_per_session_threads = False
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    model = path if isinstance(path, bytes) else str(path)
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


class SharedTokenizer:
    """One `tokenizers.Tokenizer` per distinct tokenizer.json, shared by the models that use it.

    e5's multilingual tokenizer (250k pieces) takes about 290 MB in memory; the bi-encoder and the reranker use the
    same one, so the Space holds it once. Truncation length differs per model: each call sets it under a lock.
    """

    _cache: dict[str, SharedTokenizer] = {}
    _cache_lock = threading.Lock()

    def __init__(self, text: str, pad_token: str) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_str(text)
        pad_id = self.tokenizer.token_to_id(pad_token)
        self.tokenizer.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token=pad_token)
        self.lock = threading.Lock()

    @classmethod
    def get(cls, folder: Path, pad_token: str) -> SharedTokenizer:
        """The shared tokenizer of `folder/tokenizer.json` (the same one whatever truncation or padding it saved)."""
        spec = json.loads((Path(folder) / "tokenizer.json").read_text(encoding="utf-8"))
        spec["truncation"] = spec["padding"] = None
        for part in ("pre_tokenizer", "decoder"):  # an older tokenizers wrote Metaspace's options differently
            spec[part] = _current_metaspace(spec.get(part))
        if isinstance(spec.get("model"), dict) and spec["model"].get("type") == "Unigram":
            spec["model"].setdefault("byte_fallback", False)
        text = json.dumps(spec, sort_keys=True)
        key = hashlib.sha1((text + pad_token).encode("utf-8")).hexdigest()
        with cls._cache_lock:
            if key not in cls._cache:
                cls._cache[key] = cls(text, pad_token)
            return cls._cache[key]

    def encode_batch(self, inputs: list, max_length: int) -> list:
        """Encodings of texts or (text, text) pairs, cut at `max_length` tokens (longest first), padded alike."""
        with self.lock:
            self.tokenizer.enable_truncation(max_length=max_length, strategy="longest_first")
            return self.tokenizer.encode_batch(inputs)


def _current_metaspace(component: Any) -> Any:
    """A Metaspace component saved as `add_prefix_space` in today's form (`prepend_scheme`, `split`)."""
    if not isinstance(component, dict) or component.get("type") != "Metaspace" or "add_prefix_space" not in component:
        return component
    current = {key: value for key, value in component.items() if key != "add_prefix_space"}
    current.setdefault("prepend_scheme", "always" if component["add_prefix_space"] else "never")
    current.setdefault("split", True)
    return current


def _length_order(lengths: Sequence[int]) -> np.ndarray:
    """Indices longest first, so each batch pads to similar lengths (as sentence-transformers sorts)."""
    return np.argsort([-length for length in lengths], kind="stable")


def _feeds(encodings, input_names: set[str]) -> dict[str, np.ndarray]:
    feeds = {
        "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
    }
    if "token_type_ids" in input_names:
        feeds["token_type_ids"] = np.array([e.type_ids for e in encodings], dtype=np.int64)
    return {name: value for name, value in feeds.items() if name in input_names}


def pool(token_embeddings: np.ndarray, attention_mask: np.ndarray, mode: str) -> np.ndarray:
    """Sentence embeddings from token embeddings, as sentence-transformers' Pooling module computes them."""
    mask = attention_mask[..., None].astype(np.float32)
    if mode == "mean":
        return (token_embeddings * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
    if mode == "cls":
        return token_embeddings[:, 0]
    if mode == "max":
        return np.where(mask > 0, token_embeddings, -1e9).max(axis=1)
    if mode == "lasttoken":
        last = attention_mask.sum(axis=1) - 1
        return token_embeddings[np.arange(len(last)), last]
    raise ConfigError(f"pooling {mode!r} is not supported by the ONNX path: use --backend torch")


# ------------------------------------------------------------------------------------------------ models


class _OnnxModel:
    """What both ONNX models share: they run on onnxruntime's CPU provider only."""

    backend = "onnx"

    device = "cpu"

    def to(self, device: Any):
        """Stay on the CPU (onnxruntime's CPU provider); another device needs the torch backend."""
        if str(device) != "cpu":
            raise ConfigError(f"the ONNX backend runs on the CPU, not {device}: load the model with backend='torch'")
        return self


class OnnxEncoder(_OnnxModel):
    """A sentence-transformers bi-encoder run by onnxruntime: `encode` like `SentenceTransformer.encode`."""

    def __init__(self, folder: Path, file_name: str) -> None:
        self.folder = Path(folder)
        self.file_name = file_name
        self.config = ModelConfig.read(self.folder)
        if not self.config.include_prompt and self.config.prompts:
            raise ConfigError("pooling without the prompt tokens is not supported by the ONNX path: use torch")
        self.tokenizer = SharedTokenizer.get(self.folder, self.config.pad_token)
        self.session = make_session(self.folder / file_name)
        self.input_names = {i.name for i in self.session.get_inputs()}

    @property
    def prompts(self) -> dict[str, str]:
        return self.config.prompts

    @property
    def max_seq_length(self) -> int:
        return self.config.max_length

    def get_sentence_embedding_dimension(self) -> int:
        return int(self.encode(["x"]).shape[1])

    def describe(self) -> dict[str, Any]:
        """Provenance: backend and the ONNX file."""
        return {"backend": "onnx-int8" if "qint8" in self.file_name else "onnx", "file_name": self.file_name}

    def encode(
        self,
        sentences: str | Sequence[str],
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = False,
        normalize_embeddings: bool = False,
        convert_to_numpy: bool = True,
        **_: Any,
    ) -> np.ndarray:
        """Embeddings of `sentences` (float32 rows; one row for a single string), prompt prepended."""
        single = isinstance(sentences, str)
        texts = [sentences] if single else list(sentences)
        prompt_name = prompt_name or self.config.default_prompt_name
        if prompt is None and prompt_name is not None:
            if prompt_name not in self.config.prompts:
                raise ConfigError(f"prompt {prompt_name!r} is not one of {sorted(self.config.prompts)}")
            prompt = self.config.prompts[prompt_name]
        if prompt:
            texts = [prompt + text for text in texts]
        dimension = None
        out: np.ndarray | None = None
        order = _length_order([len(text) for text in texts])
        starts = range(0, len(texts), batch_size)
        for start in tqdm(starts, desc="Batches", disable=not show_progress_bar):
            rows = order[start : start + batch_size]
            encodings = self.tokenizer.encode_batch([texts[row] for row in rows], self.config.max_length)
            feeds = _feeds(encodings, self.input_names)
            (tokens,) = self.session.run(None, feeds)
            embeddings = pool(tokens, feeds["attention_mask"], self.config.pooling)
            if out is None:
                dimension = embeddings.shape[1]
                out = np.empty((len(texts), dimension), dtype=np.float32)
            out[rows] = embeddings
        if out is None:
            out = np.zeros((0, dimension or 0), dtype=np.float32)
        if self.config.normalize or normalize_embeddings:
            out /= np.clip(np.linalg.norm(out, axis=1, keepdims=True), 1e-12, None)
        return out[0] if single else out


class OnnxCrossEncoder(_OnnxModel):
    """A sentence-transformers cross-encoder run by onnxruntime: `predict` like `CrossEncoder.predict`."""

    def __init__(self, folder: Path, file_name: str, *, max_length: int | None = None) -> None:
        self.folder = Path(folder)
        self.file_name = file_name
        self.config = ModelConfig.read(self.folder)
        self.max_length = min(max_length or RERANK_MAX_LENGTH, self.config.max_length)
        self.tokenizer = SharedTokenizer.get(self.folder, self.config.pad_token)
        self.session = make_session(self.folder / file_name)
        self.input_names = {i.name for i in self.session.get_inputs()}

    def describe(self) -> dict[str, Any]:
        """Provenance: backend, the ONNX file and the pair length cap."""
        backend = "onnx-int8" if "qint8" in self.file_name else "onnx"
        return {"backend": backend, "file_name": self.file_name, "max_length": self.max_length}

    def predict(
        self,
        sentences: Sequence[tuple[str, str]] | tuple[str, str],
        batch_size: int = 32,
        show_progress_bar: bool | None = False,
        activation_fn: Any = None,
        apply_softmax: bool = False,
        convert_to_numpy: bool = True,
        **_: Any,
    ) -> np.ndarray:
        """Scores of (query, document) pairs: logits through the model's activation (sigmoid for one label)."""
        single = isinstance(sentences, tuple) and len(sentences) == 2 and isinstance(sentences[0], str)
        pairs = [tuple(sentences)] if single else [tuple(pair) for pair in sentences]
        scores = np.empty((len(pairs), self.config.num_labels), dtype=np.float32)
        order = _length_order([len(a) + len(b) for a, b in pairs])
        starts = range(0, len(pairs), batch_size)
        for start in tqdm(starts, desc="Batches", disable=not show_progress_bar):
            rows = order[start : start + batch_size]
            encodings = self.tokenizer.encode_batch([pairs[row] for row in rows], self.max_length)
            (logits,) = self.session.run(None, _feeds(encodings, self.input_names))
            scores[rows] = logits
        if self.config.activation == "sigmoid" and activation_fn is None:
            scores = 1.0 / (1.0 + np.exp(-scores))
        if apply_softmax and scores.shape[1] > 1:
            scores = np.exp(scores - scores.max(axis=1, keepdims=True))
            scores /= scores.sum(axis=1, keepdims=True)
        if self.config.num_labels == 1:
            scores = scores[:, 0]
        return scores[0] if single else scores


# ------------------------------------------------------------------------------------------------ loading


def _is_local(model_id: str) -> bool:
    return Path(model_id).expanduser().is_dir()


def _remote_files(model_id: str, revision: str | None) -> list[str]:
    from huggingface_hub import HfApi

    from cie10 import hub

    with hub.hub_errors(model_id, "model", revision):
        return HfApi(endpoint=hub.endpoint()).list_repo_files(model_id, revision=revision)


def _download(model_id: str, revision: str | None, onnx_file: str, files: list[str]) -> Path:
    """The small config files and the one ONNX file (never the torch weights nor the code index)."""
    from huggingface_hub import snapshot_download

    from cie10 import hub

    wanted = [name for name in (*ST_CONFIG_FILES, FUSION_FILE) if name in files] + [onnx_file]
    wanted += [f"{onnx_file}{DATA_SUFFIX}", f"{onnx_file}.data"]
    with hub.hub_errors(model_id, "model", revision):
        return Path(snapshot_download(model_id, revision=revision, allow_patterns=wanted, endpoint=hub.endpoint()))


def _onnx_source(model_id: str, revision: str | None, backend: str) -> tuple[Path, str] | None:
    """(folder holding the files, ONNX file name) for an ONNX backend, or None (the model has no such file)."""
    if _is_local(model_id):
        folder = Path(model_id).expanduser()
        name = pick_onnx_file(local_files(folder), backend)
        return (folder, name) if name else None
    files = _remote_files(model_id, revision)
    name = pick_onnx_file(files, backend)
    return (_download(model_id, revision, name, files), name) if name else None


def resolve_backend(backend: str | None) -> str:
    """The backend asked for, else the `backend` setting (`CIE10_BACKEND`)."""
    return check_backend(backend or get_settings().backend)


def load_encoder(model_id: str, revision: str | None = None, backend: str | None = None, **torch_kwargs: Any):
    """A bi-encoder by Hub id or folder: `SentenceTransformer` for `torch`, `OnnxEncoder` for the ONNX backends.

    A model without the ONNX file the backend needs falls back to torch, with one log line.
    """
    return _load("bi-encoder", model_id, revision, backend, torch_kwargs)


def load_cross_encoder(model_id: str, revision: str | None = None, backend: str | None = None, **torch_kwargs: Any):
    """A reranker by Hub id or folder: `CrossEncoder` for `torch`, `OnnxCrossEncoder` for the ONNX backends."""
    model = _load("reranker", model_id, revision, backend, torch_kwargs)
    model.cie10_bi_weight = read_bi_weight(_fusion_folder(model, model_id, revision))
    return model


def _fusion_folder(model: Any, model_id: str, revision: str | None) -> Path | None:
    """Where the reranker's `cie10_fusion.json` is (or would be) on disk: its folder, its download, or None."""
    if isinstance(model, OnnxCrossEncoder):
        return model.folder
    if _is_local(model_id):
        return Path(model_id).expanduser()
    if FUSION_FILE not in _remote_files(model_id, revision):  # a mirror may answer a missing file with a 401
        return None
    from huggingface_hub import hf_hub_download

    from cie10 import hub

    with hub.hub_errors(model_id, "model", revision):
        return Path(hf_hub_download(model_id, FUSION_FILE, revision=revision, endpoint=hub.endpoint())).parent


def _load(kind: str, model_id: str, revision: str | None, backend: str | None, torch_kwargs: dict[str, Any]):
    """The ONNX model of `kind` when the backend asks for one and the files exist, else the torch model."""
    backend = resolve_backend(backend)
    if backend != "torch":
        source = _onnx_source(model_id, revision, backend)
        if source is not None:
            logger.info("%s %s: %s (%s)", kind, model_id, backend, source[1])
            return OnnxEncoder(*source) if kind == "bi-encoder" else OnnxCrossEncoder(*source)
        logger.info("%s has no %s file under onnx/: using torch", model_id, backend)
    from sentence_transformers import CrossEncoder, SentenceTransformer

    from cie10.settings import apply_torch_threads

    apply_torch_threads()
    torch_class = SentenceTransformer if kind == "bi-encoder" else CrossEncoder
    return torch_class(str(model_id), revision=revision, **torch_kwargs)


def backend_of(model: Any) -> str:
    """`onnx`, `onnx-int8` or `torch`: what actually runs a loaded model."""
    describe = getattr(model, "describe", None)
    if isinstance(model, OnnxEncoder | OnnxCrossEncoder) and describe is not None:
        return describe()["backend"]
    return "torch"
