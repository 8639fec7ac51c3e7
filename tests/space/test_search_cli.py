"""`cie10 search`: the Space's models from the terminal, on the test repos of the local Hub."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from cie10.cli import main


def _codes(text: str) -> list[str]:
    return [line.split()[1] for line in text.splitlines() if line[:3].strip().isdigit()]


def test_search_prints_ranked_codes_for_each_query(space_config, capsys) -> None:
    argv = [
        "search",
        "infarto agudo de miocardio",
        "asthma attack",
        "--revision",
        space_config.revision,
        "--no-reranker",
    ]
    assert main([*argv, "--top-k", "5"]) == 0
    printed = capsys.readouterr().out
    first, second = printed.split("asthma attack  (")
    assert first.startswith("infarto agudo de miocardio  (es; bi-encoder)")
    assert any(code.startswith("I21") for code in _codes(first)) and len(_codes(first)) == 5
    assert any(code.startswith("J45") for code in _codes(second)), second

    assert main([*argv[:2], *argv[3:], "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["language"] == "es" and payload["hits"][0]["rank"] == 1 and len(payload["hits"]) == 10


def test_search_a_note_lists_each_code_with_its_passage(space_config, tmp_path: Path, capsys) -> None:
    note = tmp_path / "note.txt"
    note.write_text(
        "Varón con fibrilación auricular. No refiere fiebre. Exploración cardiaca normal.", encoding="utf-8"
    )
    assert main(["search", "--note", str(note), "--revision", space_config.revision, "--no-reranker", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    passages = {hit["segment"]: hit for hit in payload["hits"]}
    assert passages["fibrilación auricular."]["code"].startswith("I48")
    assert passages["No refiere fiebre."]["negation"] == "no"
    assert not any("normal" in passage for passage in passages)  # a normal finding is nothing to code

    assert main(["search", "--note", str(note), "--revision", space_config.revision, "--no-reranker"]) == 0
    assert "(negation: no)" in capsys.readouterr().out


def test_search_input_errors_exit_2_with_one_message(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.ERROR, logger="cie10")
    cases = [
        (["search"], "give one or more queries, or --note FILE"),
        (["search", "fiebre", "--note", "x.txt"], "give one or more queries, or --note FILE"),
        # checked before any model loads: the model named here does not exist
        (["search", "  ", "--model", "nobody/nothing"], "Empty query"),
        (["search", "--note", str(tmp_path / "missing.txt")], "cannot read the note"),
    ]
    for argv, message in cases:
        caplog.clear()
        assert main(argv) == 2, argv
        assert message in caplog.records[-1].getMessage()
