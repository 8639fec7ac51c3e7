from __future__ import annotations

import pytest

from cie10.catalog import load_catalog
from cie10.errors import ConfigError
from cie10.generation.prompts import Task, load_template, render_prompt


def test_prompt_shows_code_title_parent_and_siblings() -> None:
    catalog = load_catalog()
    template = load_template("mentions-v1")
    prompt = render_prompt(catalog, Task("J45.909", "es", 6), template)
    assert prompt.template_version == "mentions-v1"
    assert "Target code: J45.909" in prompt.user
    assert "Unspecified asthma, uncomplicated" in prompt.user
    assert "Parent: J45.90 Unspecified asthma" in prompt.user
    assert "- J45.901: Unspecified asthma with (acute) exacerbation" in prompt.user
    assert "- J45.902: Unspecified asthma with status asthmaticus" in prompt.user
    assert "Inclusion terms: Asthma NOS" in prompt.user
    assert "6 different mentions in Spanish (language code: es)" in prompt.user
    assert prompt.siblings == ("J45.901", "J45.902")
    assert "$" not in prompt.user


def test_official_label_line_only_when_the_code_has_one() -> None:
    catalog = load_catalog()
    template = load_template("mentions-v1")
    spanish = render_prompt(catalog, Task("J45", "es", 3), template).user
    catalan = render_prompt(catalog, Task("J45", "ca", 3), template).user
    assert "Official Spanish label: Asma" in spanish
    assert "Official" not in catalan.replace("Official ICD-10-CM title", "")
    assert "\n\n\n" not in catalan


def test_unknown_template_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="mentions-v1"):
        load_template("mentions-v0")
