"""The catalogue as a Hub dataset folder (`<org>/cie10-codes`): parquet data plus a dataset card."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

import yaml

from cie10.catalog import LABEL_LANGUAGES, MISSING_SOURCES, Catalog
from cie10.catalog_sources import SOURCE_LICENSES, package_version

logger = logging.getLogger(__name__)

CODES_REPO_NAME = "cie10-codes"


def _card(catalog: Catalog, rows: int) -> str:
    """Dataset card: YAML header for the Hub, then sources, licenses, coverage and the join report."""
    header = {
        "language": [lang for lang in LABEL_LANGUAGES if lang != "ca"],
        "license": "other",
        "license_name": "mixed-sources",
        "task_categories": ["text-retrieval"],
        "tags": ["icd-10", "icd-10-cm", "cie-10", "clinical-coding", "medical"],
        "pretty_name": "ICD-10-CM 2026 code catalogue with multilingual labels",
        "size_categories": ["10K<n<100K"],
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "data/codes.parquet"}]}],
    }
    coverage_lines = [
        "| language | codes with own label | billable with own label | billable with own or inherited |",
        "|---|---|---|---|",
    ]
    for row in catalog.coverage():
        coverage_lines.append(
            f"| {row['language']} | {row['codes_with_own_label']} | {row['billable_with_own_label']} | "
            f"{row['billable_with_inherited_or_own']} / {row['billable_total']} |"
        )
    report = catalog.join_report
    join_lines = ["| language/source | joined | rejected: titles disagree | rejected: V00-Y99 4th char | not in CM |"]
    join_lines.append("|---|---|---|---|---|")
    for key in sorted(set(report.accepted) | set(report.rejected_meaning)):
        join_lines.append(
            f"| {key} | {report.accepted[key]} | {report.rejected_meaning[key]} | "
            f"{report.rejected_v_y_4char[key]} | {report.not_in_cm[key]} |"
        )
    sources = "\n".join(f"- `{name}` {package_version(name)}: {license_}" for name, license_ in SOURCE_LICENSES.items())
    missing = "\n".join(f"- `{lang}`: {why}" for lang, why in MISSING_SOURCES.items())
    return f"""---
{yaml.safe_dump(header, sort_keys=False, allow_unicode=True).strip()}
---

# cie10-codes

{catalog.version}: {rows} rows (chapters, blocks, categories and subcategories) with the English title,
inclusion terms, parent, chapter and billable flag, and titles in es, fr, pt, it and de joined by code.

Columns `title_<lang>` hold the code's own label, or, when `title_<lang>_inherited` is true, the label of its
nearest labelled ancestor (at most up to its 3-character category). An inherited label is never the code's own:
filter on the flag when that matters. `variants` lists every non-English label with its source.

## Sources and licenses

{sources}

Missing languages:
{missing}

WHO ICD-10 titles are joined to ICD-10-CM only where safe: V00-Y99 at three characters (WHO's fourth character
there is the place of occurrence), elsewhere only where WHO's English title agrees with the CM title.
`cie` holds WHO Spanish titles (scraped), not the official CIE-10-ES.

## Coverage

{chr(10).join(coverage_lines)}

## Join report

{chr(10).join(join_lines)}
"""


def write_codes_dataset(catalog: Catalog, folder: Path) -> Path:
    """Write `data/codes.parquet` and `README.md` into `folder` (replaced atomically); returns the folder."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".codes-", dir=folder.parent))
    try:
        dataset = catalog.to_dataset("full")
        (staging / "data").mkdir()
        dataset.to_parquet(str(staging / "data" / "codes.parquet"))
        (staging / "README.md").write_text(_card(catalog, len(dataset)), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("wrote %d codes to %s", len(dataset), folder)
    return folder
