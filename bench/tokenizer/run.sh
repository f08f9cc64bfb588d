#!/bin/sh
# Reproduces the tokenizer benchmark in bench/README.md ("## Tokenizer").
# Needs ../shared (minipile + 20B tokenizer) and the reference venv (../venv, or $VENV).
set -e
cd "$(dirname "$0")/../.."
VENV=${VENV:-../venv}
swift build -c release -Xswiftc -enable-testing --scratch-path .build-tok --product neoxprobe
"$VENV/bin/python" bench/tokenizer/bench.py .build-tok/release/neoxprobe "${1:-3}"
