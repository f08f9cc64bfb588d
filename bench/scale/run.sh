#!/usr/bin/env bash
# The scale measurements of bench/README.md "## Scale" (random fp16 checkpoints of real Pythia
# shapes from bench/scale/make_all.sh). Each job is one process under /usr/bin/time -v (peak RSS);
# page cache is reported separately (the checkpoint's own pages: "Cached" of /proc/meminfo before
# and after, and the checkpoint's size). Env: ONLY="sweep160 forward14 sweep28 run69" to pick,
# VENV (default ../venv), SCRATCH (SwiftPM scratch path, default .build), SHARED (../shared).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-../venv}
SCRATCH=${SCRATCH:-.build}
SHARED=${SHARED:-../shared}
OUT=bench/out/scale
BIN="$SCRATCH/release/neoxprobe"
TOKENS=Tests/Fixtures/engine/pythia-mini/row0_tokens.txt   # mini-Pile row 0, first 2048 tokens
[ -x /usr/bin/time ] || { echo "install /usr/bin/time (apt-get install time)"; exit 1; }
[ -n "${SKIP_BUILD:-}" ] || swift build -c release --scratch-path "$SCRATCH" --product neoxprobe >/dev/null
want() { [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $1 "* ]]; }
cached() { awk '/^Cached:/{printf "%.2f", $2/1048576}' /proc/meminfo; }
report() {  # name time-file
  awk -v name="$1" '/User time/{u=$NF} /System time/{s=$NF} /Elapsed \(wall clock\)/{w=$NF} /Maximum resident set size/{r=$NF} END{printf "%-34s wall %s  cpu %.1f s  peak RSS %.0f MiB (%.2f GiB)\n", name, w, u+s, r/1024, r/1048576}' "$2"
}
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; load average: $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ)"

if want sweep160; then
  # 3 pythia-160m-shaped checkpoints, outliers + CKA + LAMBADA 300, 4096 evaluation tokens (rows 0:2).
  rm -rf "$OUT/sweep160-results"
  /usr/bin/time -v -o "$OUT/sweep160-swift.time" "$BIN" sweep --suite "$OUT/suite-160m" --data "$SHARED/data/minipile/document" \
    --rows 0:2 --probes outliers,cka,lambada --lambada-data "$SHARED/data/lambada/lambada_test.jsonl" --lambada-limit 300 \
    --tokenizer "$SHARED/tokenizer/20B_tokenizer.json" --out "$OUT/sweep160-results" 2> "$OUT/sweep160-swift.log"
  grep -E "sweep: \[|chosen" "$OUT/sweep160-swift.log" || true
  /usr/bin/time -v -o "$OUT/sweep160-torch.time" "$VENV/bin/python" bench/sweep/torch_sweep.py "$OUT/suite-160m" "$SHARED" \
    "$OUT/sweep160-torch.csv" 0:2 2048 300 2> "$OUT/sweep160-torch.log"
  grep "torch_sweep" "$OUT/sweep160-torch.log" || true
  report "sweep 160m x3 neoxprobe" "$OUT/sweep160-swift.time"
  report "sweep 160m x3 torch_sweep.py" "$OUT/sweep160-torch.time"
  # Forward-only time of the same work: one pass over the 4096 tokens per checkpoint, plus LAMBADA's tokens.
  "$BIN" run --model "$OUT/suite-160m/step0" --tokens @"$TOKENS" --hooks 'blocks.*.hook_resid_post' --out "$OUT/fwd160.safetensors" --repeats 3 | grep time
  rm -f "$OUT/fwd160.safetensors"
fi

if want forward14; then
  # pythia-1.4b-shaped forward, 1×2048: streamed (auto) and resident, vs HF fp32, the hooks HF's "all" scope
  # captures (residual stream, ln_final, logits). Every hook ('*') would hold 24 layers of B×H×T×T scores
  # and patterns: 27 GiB at 1×2048, more than this machine has.
  HOOKS14='blocks.*.hook_resid_pre,blocks.*.hook_attn_out,blocks.*.hook_mlp_out,blocks.*.hook_resid_post,ln_final.hook_normalized,logits'
  for mode in streamed resident; do
    /usr/bin/time -v -o "$OUT/fwd14-$mode.time" "$BIN" run --model "$OUT/pythia-1.4b" --weights $mode --tokens @"$TOKENS" \
      --hooks "$HOOKS14" --out "$OUT/fwd14.safetensors" --repeats 2 | grep -E "time|memory"
    rm -f "$OUT/fwd14.safetensors"
    report "forward 1.4b $mode" "$OUT/fwd14-$mode.time"
  done
  /usr/bin/time -v -o "$OUT/fwd14-hf.time" "$VENV/bin/python" bench/engine/hf_forward.py "$OUT/pythia-1.4b" "$TOKENS" all 2
  report "forward 1.4b HF fp32" "$OUT/fwd14-hf.time"
fi

if want sweep28; then
  # pythia-2.8b-shaped sweep of 2 checkpoints (outliers + CKA), 2048 evaluation tokens.
  rm -rf "$OUT/sweep28-results"
  before=$(cached)
  /usr/bin/time -v -o "$OUT/sweep28.time" "$BIN" sweep --suite "$OUT/suite-2.8b" --data "$SHARED/data/minipile/document" \
    --rows 0:1 --probes outliers,cka --out "$OUT/sweep28-results" 2> "$OUT/sweep28.log"
  grep -E "sweep: \[|chosen|memory" "$OUT/sweep28.log" || true
  report "sweep 2.8b x2 (streamed)" "$OUT/sweep28.time"
  echo "page cache: $before GiB before, $(cached) GiB after (checkpoints: $(du -sh "$OUT/suite-2.8b" | cut -f1))"
fi

if want run69; then
  # pythia-6.9b-shaped run, 1×2048, every resid_post hook.
  before=$(cached)
  /usr/bin/time -v -o "$OUT/run69.time" "$BIN" run --model "$OUT/pythia-6.9b" --tokens @"$TOKENS" \
    --hooks 'blocks.*.hook_resid_post' --out "$OUT/run69.safetensors" | grep -E "time|memory|hooks"
  rm -f "$OUT/run69.safetensors"
  report "run 6.9b 1x2048 resid_post (streamed)" "$OUT/run69.time"
  echo "page cache: $before GiB before, $(cached) GiB after (checkpoint: $(du -sh "$OUT/pythia-6.9b" | cut -f1))"
fi
