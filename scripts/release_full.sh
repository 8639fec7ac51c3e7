#!/usr/bin/env bash
# The full CPU recipe (issue 16), against the local Hub started by `make hub` (HF_ENDPOINT is set):
# every offline source at full scope -> bi-encoder (cpu-full) -> reranker (cpu-full) -> CodiEsp dev and synthetic
# test evaluation -> release as $CIE10_FULL_VERSION (default v2.0).
# Resumable: rerun the same command after an interruption; a finished step is skipped (its run summary exists),
# a training step continues from its last checkpoint. Run it in the background:
#   nohup make release-full > release-full.log 2>&1 &
set -euo pipefail
cie10=".venv/bin/cie10"
version="${CIE10_FULL_VERSION:-v2.0}"
org="${CIE10_ORG:-cie10}"
codiesp="${CIE10_CODIESP_DIR:-../shared/data/codiesp}"
out="results/full"
started=$(date +%s)
step() { echo; echo "== [$(( $(date +%s) - started ))s] $*"; }

step "1. catalogue"
"$cie10" codes publish

step "2. data: every offline source at full scope (terminology, CodiEsp train, Apertium pivots)"
"$cie10" generate --scope full --sources terminology codiesp translate --publish

step "3. bi-encoder (cpu-full preset): every name of every code and the training queries in its index"
if [[ -f models/cie10-bi/run_summary.json ]]; then echo "done earlier: models/cie10-bi"; else
  "$cie10" train bi-encoder --config cpu-full-bi-encoder --dataset "$org/cie10-synth" --resume
fi

step "4. reranker (cpu-full preset) on the bi-encoder's candidates"
if [[ -f models/cie10-rerank/run_summary.json ]]; then echo "done earlier: models/cie10-rerank"; else
  "$cie10" train reranker --config cpu-full-reranker --dataset "$org/cie10-synth" --resume
fi

step "5. evaluation: synthetic test (six languages) and CodiEsp dev (all and unseen mentions, documents), all codes"
"$cie10" evaluate --model models/cie10-bi/final --dataset "$org/cie10-synth" --split test --scope full \
    --out "$out/bi"
"$cie10" evaluate --model models/cie10-bi/final --reranker models/cie10-rerank/final \
    --dataset "$org/cie10-synth" --split test --scope full --out "$out/bi-rerank"
"$cie10" evaluate codiesp --folder "$codiesp/dev" --model models/cie10-bi/final \
    --reranker models/cie10-rerank/final --scope full --baseline lookup --baseline bm25-en-es --baseline base \
    --out "$out/codiesp"

step "6. release $version"
"$cie10" release --version "$version" --results "$out"

step "done in $(( $(date +%s) - started ))s"
