#!/usr/bin/env bash
# The main job on the embedded defaults, against the local Hub started by `make hub` (HF_ENDPOINT is set).
set -euo pipefail
cie10=".venv/bin/cie10"
version="${CIE10_VERSION:-v1.0}"

echo "== 1. catalogue: ICD-10-CM 2026 with multilingual labels"
"$cie10" codes stats
"$cie10" codes publish --version "$version"

echo "== done: local Hub at $HF_ENDPOINT serves ${CIE10_ORG}/cie10-codes at $version"
