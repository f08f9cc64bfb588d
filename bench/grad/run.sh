#!/usr/bin/env bash
# Reproduces the "## Gradients" table in bench/README.md. Needs the reference venv (VENV, default ../venv)
# and /usr/bin/time (apt package `time`). Env: VENV, SCRATCH (SwiftPM scratch path), REPEATS (passes per
# process, best kept), ROUNDS (Swift/PyTorch alternations).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-../venv}
SCRATCH=${SCRATCH:-.build}
REPEATS=${REPEATS:-2}
export ROUNDS=${ROUNDS:-1}
MODEL=bench/out/pythia-160m-random
TOKENS=Tests/Fixtures/engine/pythia-mini/row0_tokens.txt   # mini-Pile row 0, first 2048 tokens
[ -x /usr/bin/time ] || { echo "install /usr/bin/time (apt-get install time)"; exit 1; }
[ -f "$MODEL/model.safetensors" ] || "$VENV/bin/python" Tests/Fixtures/generate_engine.py --bench "$MODEL"
swift build -c release --scratch-path "$SCRATCH" --product neoxprobe >/dev/null
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$VENV/bin/python" bench/grad/bench.py "$SCRATCH/release/neoxprobe" "$VENV/bin/python" "$MODEL" "$TOKENS" "$REPEATS"
