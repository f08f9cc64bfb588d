#!/usr/bin/env bash
# The cluster test (make test-cluster): a one-node Slurm cluster on this machine (start_cluster.sh)
# runs `neoxprobe slurm`'s job array (3 shards of a pythia-mini sweep, --shard slurm, one shared
# results directory) and its dependent merge job; metrics.csv and run.json must equal, byte for
# byte, those of a single-machine sweep of the same steps. Needs root (or sudo) for apt and the daemons.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN="${BIN:-.build/release/neoxprobe}"
SHARED="${SHARED:-../shared}"
TIMEOUT="${CLUSTER_TIMEOUT:-900}"
suite="$SHARED/models/pythia-mini"; data="$SHARED/data/minipile/document"
if [ ! -d "$suite" ] || [ ! -f "$data.idx" ]; then
  echo "test-cluster: skipped: no pythia-mini suite / minipile under $SHARED"; exit 0
fi
[ -x "$BIN" ] || { echo "test-cluster: no $BIN (make build)" >&2; exit 1; }
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
started=$(date +%s)
eval "$(Tests/Cluster/start_cluster.sh)"
echo "test-cluster: cluster up in $(( $(date +%s) - started )) s ($(sinfo -h -N -o '%N %c CPUs %m MB %t' | head -n 1))"

work="$(mktemp -d "${TMPDIR:-/tmp}/neoxprobe-cluster-XXXXXX")"
trap '[ "${KEEP:-0}" = 1 ] || rm -rf "$work"' EXIT
args=(--suite "$suite" --data "$data" --batch-of-step 1999 --batch-size 4 --quiet)

t0=$(date +%s)
"$BIN" sweep "${args[@]}" --out "$work/single" >/dev/null
t1=$(date +%s)
echo "test-cluster: single-machine sweep in $((t1 - t0)) s"

# One CPU a task so that two of the three tasks run at once on a 2-core node.
out="$("$BIN" slurm --shards 3 --cpus-per-task 1 --mem-gib 2 --submit -- "${args[@]}" --out "$work/cluster")"
echo "$out"
array="$(echo "$out" | sed -n 's/.*submitted sweep array job \([0-9]*\) and merge job \([0-9]*\).*/\1/p')"
merge="$(echo "$out" | sed -n 's/.*submitted sweep array job \([0-9]*\) and merge job \([0-9]*\).*/\2/p')"
[ -n "$array" ] && [ -n "$merge" ] || { echo "test-cluster: FAIL: no job ids in the slurm command's output" >&2; exit 1; }
grep -q -- '--array=0-2' "$work/cluster.slurm/sweep.sbatch"

deadline=$(( $(date +%s) + TIMEOUT ))
while [ -n "$(squeue -h -j "$array,$merge" 2>/dev/null)" ]; do
  if [ "$(date +%s)" -gt "$deadline" ]; then
    squeue; scancel "$array" "$merge" || true
    echo "test-cluster: FAIL: jobs still queued or running after $TIMEOUT s" >&2; exit 1
  fi
  sleep 1
done
t2=$(date +%s)
echo "test-cluster: array of 3 shards + merge finished in $((t2 - t1)) s"

fail=0
for job in "${array}_0" "${array}_1" "${array}_2" "$merge"; do
  state="$(scontrol show job "$job" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -n 1)"
  echo "test-cluster: job $job: ${state:-unknown}"
  [ "$state" = COMPLETED ] || fail=1
done
for log in "$work"/cluster.slurm/logs/*.out; do
  if [ "$fail" = 1 ] || [ -s "$log" ]; then echo "--- $log"; cat "$log"; fi
done
[ "$fail" = 0 ] || { echo "test-cluster: FAIL: a job did not complete" >&2; exit 1; }

for f in metrics.csv run.json; do
  if cmp "$work/single/$f" "$work/cluster/$f"; then
    echo "test-cluster: $f identical ($(wc -c < "$work/single/$f") bytes)"
  else
    diff <(head -c 3000 "$work/single/$f") <(head -c 3000 "$work/cluster/$f") | head -20 || true
    echo "test-cluster: FAIL: $f of the cluster run differs from the single-machine sweep" >&2; exit 1
  fi
done
echo "test-cluster: passed in $(( $(date +%s) - started )) s"
