"""Encoding many texts on every core: worker processes, one onnxruntime session each (one thread per session).

    with EncodePool(encoder.folder, "onnx/model.onnx", workers=2) as pool:
        embeddings = pool.encode(titles, prompt_name="document", batch_size=64)

The texts are sorted by length once, cut into batches of similar length, and the batches dealt to the workers,
so no worker pads short titles to a long one. Used by `cie10.code_index.build_code_index` for an ONNX encoder
(`encode_documents_parallel`); a torch model is encoded in this process as before.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

_WORKER: Any = None


def default_workers() -> int:
    """One worker per core this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _start_worker(folder: str, file_name: str, threads: int) -> None:
    global _WORKER
    from cie10.inference.encoder import OnnxEncoder, use_thread_pool

    use_thread_pool(threads)
    _WORKER = OnnxEncoder(folder, file_name)


def _encode_batch(texts: list[str], prompt_name: str | None, normalize: bool) -> np.ndarray:
    return _WORKER.encode(texts, prompt_name=prompt_name, batch_size=len(texts), normalize_embeddings=normalize)


class EncodePool:
    """`workers` processes, each holding an ONNX encoder of `file_name` in `folder` (spawned, so no onnxruntime state
    is forked)."""

    def __init__(self, folder: Any, file_name: str, workers: int | None = None, threads_per_worker: int = 1) -> None:
        self.workers = workers or default_workers()
        self.executor = ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(str(folder), file_name, threads_per_worker),
        )

    def encode(
        self,
        texts: Sequence[str],
        prompt_name: str | None = None,
        batch_size: int = 64,
        normalize_embeddings: bool = True,
    ) -> np.ndarray:
        """Embeddings of `texts` in their order (float32), computed by the workers in length-sorted batches."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        order = np.argsort([-len(text) for text in texts], kind="stable")
        batches = [order[start : start + batch_size] for start in range(0, len(texts), batch_size)]
        futures = [
            self.executor.submit(_encode_batch, [texts[i] for i in rows], prompt_name, normalize_embeddings)
            for rows in batches
        ]
        out: np.ndarray | None = None
        for rows, future in zip(batches, futures, strict=True):
            embeddings = future.result()
            if out is None:
                out = np.empty((len(texts), embeddings.shape[1]), dtype=np.float32)
            out[rows] = embeddings
        return out

    def close(self) -> None:
        """Stop the workers."""
        self.executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> EncodePool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def can_parallelize(model: Any) -> bool:
    """Whether `model` is an ONNX encoder whose files worker processes can load."""
    from cie10.inference.encoder import OnnxEncoder

    return isinstance(model, OnnxEncoder)


def document_file(model: Any) -> str:
    """The float32 graph of an ONNX encoder's folder where there is one, else the encoder's own file: an index is
    built once and searched by every query, so its rows stay exact whatever file (int8) encodes the queries."""
    from cie10.inference.files import FP32_FILE

    return FP32_FILE if (model.folder / FP32_FILE).is_file() else model.file_name


PARALLEL_MIN_TEXTS = 1024
"""Fewer texts than this are encoded in-process: starting the workers (a few seconds) would cost more."""
_POOLS: dict[tuple[str, str], EncodePool] = {}


def _close_pools() -> None:
    for pool in _POOLS.values():
        pool.close()
    _POOLS.clear()


def encode_documents_parallel(
    model: Any, texts: Sequence[str], prompt_name: str | None, batch_size: int = 64
) -> np.ndarray | None:
    """Normalised embeddings of `texts` on one worker per core, or None where that does not apply.

    It applies to an ONNX encoder, on a machine with more than one core, for at least `PARALLEL_MIN_TEXTS` texts
    (an index build), which the workers encode with the folder's float32 graph (`document_file`); they start
    once per encoder and stay until the process exits. Measured on the 2 shared
    cores (docs/inference.md): two workers of one thread beat one session of two threads on length-sorted batches.
    """
    if not can_parallelize(model) or len(texts) < PARALLEL_MIN_TEXTS or default_workers() < 2:
        return None
    key = (str(model.folder), document_file(model))
    if key not in _POOLS:
        if not _POOLS:
            import atexit

            atexit.register(_close_pools)
        logger.info("encoding on %d worker processes (%s)", default_workers(), key[1])
        _POOLS[key] = EncodePool(*key)
    return _POOLS[key].encode(texts, prompt_name=prompt_name, batch_size=batch_size)
