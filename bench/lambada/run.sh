#!/usr/bin/env bash
# Full LAMBADA (OpenAI, 5153 examples): `neoxprobe lambada` vs lm-evaluation-harness (`lm_eval
# --model hf`, CPU, fp32) on the same model, in the same invocation. Records wall time and peak RSS
# (/usr/bin/time -v) of both, and checks acc and perplexity agree (acc exact, perplexity 1e-4).
#
#   bench/lambada/run.sh [MODEL_DIR]        (default ../shared/models/pythia-mini/step2000)
#   env: VENV (default ../venv), SHARED (default ../shared), BATCH (lm_eval batch size, default 16),
#        LIMIT (evaluate only the first N examples, both sides; default: all)
#
# Outputs under bench/out/lambada/ (git-ignored): the task yaml, a tokenizer dir for HF, both
# tools' JSON results and time logs, and summary.txt.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
SHARED="$(cd "${SHARED:-../shared}" && pwd)"
VENV="$(cd "${VENV:-../venv}" && pwd)"
MODEL="$(cd "${1:-$SHARED/models/pythia-mini/step2000}" && pwd)"
BATCH="${BATCH:-16}"
DATA="$SHARED/data/lambada/lambada_test.jsonl"
OUT="$ROOT/bench/out/lambada"
SCRATCH="${SCRATCH:-.build-eval}"
rm -rf "$OUT" && mkdir -p "$OUT/tasks" "$OUT/tok"

limit_swift=(); limit_lm=()
if [ -n "${LIMIT:-}" ]; then limit_swift=(--limit "$LIMIT"); limit_lm=(--limit "$LIMIT"); fi

echo "== build (release)"
swift build -c release -Xswiftc -enable-testing --scratch-path "$SCRATCH" --product neoxprobe 2>&1 | tail -1
BIN="$SCRATCH/release/neoxprobe"

# A tokenizer directory transformers can load offline (the GPT-NeoX-20B tokenizer Pythia uses).
cp "$SHARED/tokenizer/20B_tokenizer.json" "$OUT/tok/tokenizer.json"
echo '{"tokenizer_class": "GPTNeoXTokenizerFast", "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "add_prefix_space": false}' \
  > "$OUT/tok/tokenizer_config.json"
# lambada_openai with the local data file instead of the Hub dataset (same prompt, target, metrics).
sed "s|@DATA@|$DATA|" bench/lambada/lambada_openai_local.yaml.in > "$OUT/tasks/lambada_openai_local.yaml"

echo "== machine"
{ uname -srm; nproc; grep -m1 'model name' /proc/cpuinfo || true; uptime; } | tee "$OUT/machine.txt"

echo "== neoxprobe lambada"
/usr/bin/time -v "$BIN" lambada --model "$MODEL" --data "$DATA" --tokenizer "$SHARED/tokenizer/20B_tokenizer.json" \
  "${limit_swift[@]}" --json > "$OUT/neoxprobe.json" 2> "$OUT/neoxprobe.time"
grep -E '"(acc|perplexity|n)"' "$OUT/neoxprobe.json"

echo "== lm_eval (hf, cpu, fp32, batch $BATCH)"
HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false \
  /usr/bin/time -v "$VENV/bin/lm_eval" --model hf \
  --model_args "pretrained=$MODEL,tokenizer=$OUT/tok,dtype=float32" \
  --tasks lambada_openai_local --include_path "$OUT/tasks" --device cpu --batch_size "$BATCH" \
  "${limit_lm[@]}" --output_path "$OUT/lm_eval" > "$OUT/lm_eval.log" 2> "$OUT/lm_eval.time"
tail -6 "$OUT/lm_eval.log"

"$VENV/bin/python" - "$OUT" <<'EOF' | tee "$OUT/summary.txt"
import glob, json, math, re, sys
out = sys.argv[1]
def timing(path):
    text = open(path).read()
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text).group(1)
    seconds = sum(float(p) * 60 ** i for i, p in enumerate(reversed(wall.split(":"))))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) / 1024
    cpu = sum(float(re.search(rf"{k} time \(seconds\): (\S+)", text).group(1)) for k in ("User", "System"))
    return seconds, rss, cpu
swift = json.load(open(f"{out}/neoxprobe.json"))
lm = json.load(open(sorted(glob.glob(f"{out}/lm_eval/**/results*.json", recursive=True))[-1]))["results"]["lambada_openai_local"]
(ts, ms, cs), (tl, ml, cl) = timing(f"{out}/neoxprobe.time"), timing(f"{out}/lm_eval.time")
rel = abs(swift["perplexity"] / lm["perplexity,none"] - 1)
print(f"examples            {swift['n']}")
print(f"acc                 neoxprobe {swift['acc']:.6f}   lm_eval {lm['acc,none']:.6f}   {'identical' if swift['acc'] == lm['acc,none'] else 'DIFFERENT'}")
print(f"perplexity          neoxprobe {swift['perplexity']:.6f}   lm_eval {lm['perplexity,none']:.6f}   rel. diff {rel:.2e} {'ok' if rel < 1e-4 else 'TOO LARGE'}")
print(f"wall time           neoxprobe {ts:.1f} s   lm_eval {tl:.1f} s   speed-up {tl / ts:.1f}x")
print(f"CPU time (usr+sys)  neoxprobe {cs:.1f} s   lm_eval {cl:.1f} s   ratio {cl / cs:.1f}x")
print(f"peak RSS            neoxprobe {ms:.0f} MiB   lm_eval {ml:.0f} MiB   ratio {ms / ml:.3f}")
EOF
