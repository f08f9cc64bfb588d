#!/usr/bin/env bash
# Reproduces the "## Sweep" figures in bench/README.md: `neoxprobe sweep` vs an equivalent
# PyTorch/HF script (bench/sweep/torch_sweep.py) on the whole pythia-mini suite, same tokens, same
# probes (outliers + CKA + LAMBADA), same machine, one after the other. Wall time and peak RSS
# come from /usr/bin/time -v. Needs the reference venv (VENV, default ../venv).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-../venv}
SCRATCH=${SCRATCH:-.build}
SHARED=${SHARED:-../shared}
ROWS=${ROWS:-0:4}            # evaluation rows of minipile document.bin
SEQ_LEN=${SEQ_LEN:-2048}     # tokens per row (8192 evaluation tokens by default)
LIMIT=${LIMIT:-1000}         # LAMBADA examples
OUT=${OUT:-bench/out/sweep}
[ -x /usr/bin/time ] || { echo "install /usr/bin/time (apt-get install time)"; exit 1; }
[ -n "${SKIP_BUILD:-}" ] || swift build -c release --scratch-path "$SCRATCH" --product neoxprobe >/dev/null
mkdir -p "$OUT"; rm -rf "$OUT/results"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
SUITE="$SHARED/models/pythia-mini"

echo "== neoxprobe sweep"
/usr/bin/time -v -o "$OUT/swift.time" "$SCRATCH/release/neoxprobe" sweep --suite "$SUITE" \
  --data "$SHARED/data/minipile/document" --rows "$ROWS" --seq-len "$SEQ_LEN" \
  --probes outliers,cka,lambada --lambada-data "$SHARED/data/lambada/lambada_test.jsonl" --lambada-limit "$LIMIT" \
  --tokenizer "$SHARED/tokenizer/20B_tokenizer.json" --out "$OUT/results"
echo "== torch_sweep.py"
/usr/bin/time -v -o "$OUT/torch.time" "$VENV/bin/python" bench/sweep/torch_sweep.py "$SUITE" "$SHARED" "$OUT/torch.csv" "$ROWS" "$SEQ_LEN" "$LIMIT"

report() { awk -v name="$1" '/User time/{u=$NF} /System time/{s=$NF} /Elapsed \(wall clock\)/{w=$NF} /Maximum resident set size/{r=$NF} END{printf "%-16s wall %s  cpu %.1f s  peak RSS %.0f MiB\n", name, w, u+s, r/1024}' "$2"; }
report "neoxprobe sweep" "$OUT/swift.time"
report "torch_sweep.py" "$OUT/torch.time"
# Agreement of the two (CKA and LAMBADA acc/perplexity) as a sanity check.
"$VENV/bin/python" - "$OUT/results/metrics.csv" "$OUT/torch.csv" <<'PY'
import csv, sys
def load(p): return {(r["step"], r["layer"], r["site"], r["metric"]): float(r["value"]) for r in csv.DictReader(open(p))}
a, b = load(sys.argv[1]), load(sys.argv[2])
common = [k for k in b if k in a and k[3] in ("cka", "acc", "perplexity", "max_abs", "kurtosis")]
worst = max(abs(a[k] - b[k]) / max(abs(b[k]), 1e-12) for k in common)
print(f"agreement: {len(common)} shared cka/max_abs/kurtosis/lambada values, worst relative difference {worst:.2e}")
PY
