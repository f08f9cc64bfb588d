#!/usr/bin/env bash
# Generates the random fp16 checkpoints the scale benchmarks use (about 29 GB on disk):
#   bench/out/scale/suite-160m/step{0,1,2}   3 × 0.32 GB
#   bench/out/scale/pythia-1.4b              2.8 GB
#   bench/out/scale/suite-2.8b/step{0,1}     2 × 5.6 GB
#   bench/out/scale/pythia-6.9b              13.8 GB
# Existing directories are kept. Env: VENV (default ../venv), ONLY="160m 1.4b ..." to pick some.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-../venv}
OUT=bench/out/scale
make() { [ -f "$2/config.json" ] || nice "$VENV/bin/python" bench/scale/make_checkpoint.py "$1" "$2" "$3"; }
want() { [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $1 "* ]]; }
if want 160m; then for s in 0 1 2; do make 160m "$OUT/suite-160m/step$s" "$s"; done; fi
if want 1.4b; then make 1.4b "$OUT/pythia-1.4b" 14; fi
if want 2.8b; then for s in 0 1; do make 2.8b "$OUT/suite-2.8b/step$s" "$((28 + s))"; done; fi
if want 6.9b; then make 6.9b "$OUT/pythia-6.9b" 69; fi
du -sh "$OUT"/* 2>/dev/null || true
