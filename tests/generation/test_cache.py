from __future__ import annotations

from pathlib import Path

from cie10.generation.cache import Completion, ResponseCache, Usage, request_key


def test_replies_round_trip_and_keys_follow_every_input(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    key = request_key("gemini", "gemini-2.5-flash", "system", "user", {"temperature": 0.9})
    assert cache.get("gemini", key) is None
    cache.put("gemini", key, Completion('{"mentions": []}', "STOP", Usage(10, 5, 1)), {"code": "I10"})
    again = cache.get("gemini", key)
    assert again == Completion('{"mentions": []}', "STOP", Usage(10, 5, 1))
    assert not list(tmp_path.rglob(".tmp-*"))
    variants = {
        request_key("openai", "gemini-2.5-flash", "system", "user", {"temperature": 0.9}),
        request_key("gemini", "gemini-2.5-pro", "system", "user", {"temperature": 0.9}),
        request_key("gemini", "gemini-2.5-flash", "system", "user!", {"temperature": 0.9}),
        request_key("gemini", "gemini-2.5-flash", "system", "user", {"temperature": 1.0}),
    }
    assert key not in variants and len(variants) == 4


def test_a_truncated_file_counts_as_missing(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    key = "ab" * 32
    cache.put("gemini", key, Completion("text"))
    path = next(tmp_path.rglob(f"{key}.json"))
    path.write_text('{"key": "ab', encoding="utf-8")
    assert cache.get("gemini", key) is None
