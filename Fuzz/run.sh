#!/usr/bin/env bash
# Builds the fuzz targets (libFuzzer + AddressSanitizer) and runs each for FUZZ_SECONDS.
#   Fuzz/run.sh [TARGET...]      (default: every target)
# Environment: FUZZ_SECONDS (per target, default 60), FUZZ_CONFIG (debug|release, default release),
#   FUZZ_JOBS (parallel targets, default 1), FUZZ_LOG (summary file, default Fuzz/.work/summary.tsv),
#   FUZZ_BIN (an already built neoxprobe-fuzz: no build).
# Seeds: Fuzz/corpus/<target> (committed; Fuzz/make_seeds.py writes them from ../shared). What the
# fuzzer learns goes to Fuzz/.work/corpus/<target>, findings to Fuzz/.work/findings/<target>/.
# Exit status 1 when any target found a crash, a hang (-timeout), or memory past the limits.
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_PER_TARGET="${FUZZ_SECONDS:-60}"
# debug by default: quicker to build than release, and its reports point at source lines.
CONFIG="${FUZZ_CONFIG:-debug}"
JOBS="${FUZZ_JOBS:-1}"
WORK="$PWD/.work"
LOG="${FUZZ_LOG:-$WORK/summary.tsv}"
mkdir -p "$WORK"

start=$(date +%s)
if [ -n "${FUZZ_BIN:-}" ]; then BIN="$FUZZ_BIN"; else
# -enable-testing: the pickle machine and the shard-index reader are internal to Formats.
# -Xswiftc -sanitize=fuzzer,address: SwiftPM (6.3) hands the driver its two --sanitize flags as two
# separate -sanitize= options, in an order that changes from one build plan to the next, and the
# driver keeps only the last one: the frontend then gets either no coverage instrumentation (about
# 120 counters: libFuzzer mutates blind) or no AddressSanitizer. The combined option, passed after
# SwiftPM's own, always wins; SwiftPM's flags stay for its link step (the fuzzer's entry point).
swift build -c "$CONFIG" --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer,address -Xswiftc -enable-testing 2>&1 \
  | grep -vE 'ld.gold: warning|unhandled; explicitly declare' || true
BIN="$(swift build -c "$CONFIG" --show-bin-path)/neoxprobe-fuzz"
[ -x "$BIN" ] || { echo "fuzz: build failed" >&2; exit 1; }
echo "fuzz: built in $(( $(date +%s) - start )) s ($CONFIG)"
fi
# Refuse to fuzz blind: an uninstrumented build would report "nothing found" for nothing.
coverage_counters() {
  NEOXPROBE_FUZZ_TARGET=tokens SWIFT_BACKTRACE=enable=no "$BIN" -runs=0 2>&1 \
    | grep -oE '\(([0-9]+) inline 8-bit counters' | grep -oE '[0-9]+' | head -1 || echo 0
}
counters=$(coverage_counters)
if [ "${counters:-0}" -lt 1000 ]; then echo "fuzz: the build has ${counters:-0} coverage counters: not instrumented ($CONFIG)" >&2; exit 1; fi
echo "fuzz: $counters coverage counters"
# The same for AddressSanitizer: without it an out-of-bounds read passes unseen.
if ! nm "$BIN" 2>/dev/null | grep '__asan_report_load' >/dev/null; then echo "fuzz: the build has no AddressSanitizer ($CONFIG)" >&2; exit 1; fi

if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(NEOXPROBE_FUZZ_TARGET=list "$BIN" 2>/dev/null | cut -f1); fi

# The Swift runtime's backtracer waits on a crashed process; libFuzzer reports the crash itself.
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:symbolize=1"

run_target() {
  local target=$1
  mkdir -p "$WORK/corpus/$target" "$WORK/findings/$target" "$WORK/scratch"
  local log="$WORK/$target.log"
  NEOXPROBE_FUZZ_TARGET=$target NEOXPROBE_FUZZ_SCRATCH="$WORK/scratch" "$BIN" \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2560 -malloc_limit_mb=2048 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="$WORK/findings/$target/" \
    "$WORK/corpus/$target" "corpus/$target" >"$log" 2>&1
  local status=$?
  local runs; runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
  local found; found=$(find "$WORK/findings/$target" -type f | wc -l)
  printf '%s\t%s\t%s\t%s\t%s\n' "$target" "$SECONDS_PER_TARGET" "$runs" "$found" "$status" >>"$LOG"
  if [ "$status" -ne 0 ] || [ "$found" -ne 0 ]; then
    echo "fuzz: $target FOUND something (exit $status); see $log and $WORK/findings/$target/" >&2
    grep -E 'ERROR|Fatal error|==[0-9]+==|SUMMARY|Test unit written' "$log" | head -20 >&2
    return 1
  fi
  echo "fuzz: $target: $runs executions in $SECONDS_PER_TARGET s, nothing found"
}

printf 'target\tseconds\texecutions\tfindings\texit\n' >"$LOG"
failed=0
if [ "$JOBS" -gt 1 ]; then
  pids=()
  for t in "${targets[@]}"; do
    run_target "$t" & pids+=($!)
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 1; done
  done
  for p in "${pids[@]}"; do wait "$p" || failed=1; done
else
  for t in "${targets[@]}"; do run_target "$t" || failed=1; done
fi
echo "fuzz: summary in $LOG; total $(( $(date +%s) - start )) s"
column -t "$LOG" 2>/dev/null || cat "$LOG"
exit $failed
