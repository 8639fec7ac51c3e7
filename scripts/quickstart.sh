#!/usr/bin/env bash
# The main job on the embedded defaults, against the local Hub started by `make hub` (HF_ENDPOINT is set):
# catalogue → synthetic data → bi-encoder → reranker → evaluation → release → Space.
set -euo pipefail
cie10=".venv/bin/cie10"
version="${CIE10_VERSION:-v1.0}"
org="${CIE10_ORG:-cie10}"
started=$(date +%s)
step() { echo; echo "== [$(( $(date +%s) - started ))s] $*"; }

step "1. catalogue: ICD-10-CM 2026 with multilingual labels"
"$cie10" codes stats
"$cie10" codes publish   # untagged: the release tags every repo at once

step "2. synthetic pairs, offline: official labels, CodiEsp train mentions, Apertium pivots (LLMs: docs/generation.md)"
"$cie10" generate --sources terminology codiesp translate --no_dedup --publish

step "3. bi-encoder: short CPU run from the embedded multilingual-e5-small (catalogue scope: quickstart)"
"$cie10" train bi-encoder --config quickstart-bi-encoder --dataset "$org/cie10-synth"

step "4. reranker: short CPU run on the bi-encoder's shortlists"
"$cie10" train reranker --config quickstart-reranker --dataset "$org/cie10-synth"

step "5. evaluation on the synthetic test split, BM25 and the base encoder beside"
"$cie10" evaluate --model models/cie10-bi/final --dataset "$org/cie10-synth" --split test --out results/release/bi
"$cie10" evaluate --model models/cie10-bi/final --reranker models/cie10-rerank/final \
    --dataset "$org/cie10-synth" --split test --out results/release/bi-rerank

step "6. release $version: codes, data, both models (with the code index), metric and Space"
"$cie10" release --version "$version" --results results/release

step "7. the Space, served from the local Hub at $version"
"$cie10" serve --revision "$version" --background

step "done in $(( $(date +%s) - started ))s: local Hub at $HF_ENDPOINT"
