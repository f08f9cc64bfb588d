#!/usr/bin/env bash
# Reproduces the "## Generation" table in bench/README.md: `neoxprobe generate` vs HF model.generate
# (greedy, KV cache, fp32, 2 threads), pythia-160m-shaped random weights, 32-token prompts, 128 new
# tokens, batch 1 and 16. Needs the reference venv (VENV, default ../venv), /usr/bin/time and ../shared.
# Env: VENV, SCRATCH (SwiftPM scratch path), REPEATS (HF generate calls per process), ROUNDS (alternations).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-../venv}
SCRATCH=${SCRATCH:-.build}
REPEATS=${REPEATS:-2}
export ROUNDS=${ROUNDS:-2}
MODEL=bench/out/pythia-160m-random
DATA=../shared/data/minipile/document
[ -x /usr/bin/time ] || { echo "install /usr/bin/time (apt-get install time)"; exit 1; }
[ -f "$MODEL/model.safetensors" ] || "$VENV/bin/python" Tests/Fixtures/generate_engine.py --bench "$MODEL"
swift build -c release --scratch-path "$SCRATCH" --product neoxprobe >/dev/null
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$VENV/bin/python" bench/generate/bench.py "$SCRATCH/release/neoxprobe" "$VENV/bin/python" "$MODEL" "$DATA" "$REPEATS"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
