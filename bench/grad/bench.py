#!/usr/bin/env python3
"""bench/grad: all-parameter gradients of a pythia-160m-shaped model on 1×T tokens, `neoxprobe grad`
against PyTorch fp32 loss.backward() (hf_backward.py), each its own process under /usr/bin/time -v,
alternating ROUNDS rounds (each side keeps its fastest). Prints the bench/README.md table row.
Usage: bench.py NEOXPROBE PYTHON MODEL TOKENS REPEATS"""
import json, os, re, subprocess, sys

neoxprobe, python, model, tokens, repeats = sys.argv[1:6]
rounds = int(os.environ.get("ROUNDS", "1"))
here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(os.path.dirname(model), "grad.safetensors")


def timed(cmd):
    run = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True, check=True)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr).group(1)) / 1024
    return json.loads(run.stdout[run.stdout.index("{"):]), rss


swift, hf = [], []
for _ in range(rounds):
    swift.append(timed([neoxprobe, "grad", "--model", model, "--tokens", "@" + tokens, "--params", "*",
                        "--out", out, "--repeats", repeats, "--json"]))
    hf.append(timed([python, os.path.join(here, "hf_backward.py"), model, tokens, "2", repeats]))
os.remove(out)
(s, s_rss), (h, h_rss) = min(swift, key=lambda r: r[0]["backward_seconds"]), min(hf, key=lambda r: r[0]["seconds"])
rate = float(re.search(r"sgemm ([\d.]+)", subprocess.run([python, os.path.join(here, "..", "engine", "sgemm.py")],
                                                        capture_output=True, text=True, check=True).stdout).group(1))
with open(os.path.join(model, "config.json")) as f:
    c = json.load(f)
d, ff, V, L = c["hidden_size"], c["intermediate_size"], c["vocab_size"], c["num_hidden_layers"]
with open(tokens) as f:
    T = len(f.readline().split())
# Necessary FLOPs: the forward's matmuls (2·params·tokens, causal attention over the lower triangle,
# the unembedding) once forward and twice backward (input and weight gradients; dP, dV, dQ, dK).
forward = L * (2 * T * (4 * d * d + 2 * d * ff) + 2 * T * T * d) + 2 * T * d * V
flops = 3 * forward
sw, ht = s["backward_seconds"], h["seconds"]
print(f"loss swift {s['loss']:.7f} torch {h['loss']:.7f} (rel diff {abs(s['loss'] - h['loss']) / h['loss']:.1e})")
print("| shape | tokens | necessary GFLOP | Swift forward+backward | PyTorch forward+backward | speed-up | Swift peak RSS | PyTorch peak RSS | Swift fraction of sgemm rate |")
print("|---|---|---|---|---|---|---|---|---|")
print(f"| pythia-160m | 1×{T} | {flops / 1e9:.1f} | {sw:.2f} s | {ht:.2f} s | **{ht / sw:.2f}×** | {s_rss:.0f} MiB | {h_rss:.0f} MiB | "
      f"{flops / sw / 1e9 / rate:.0%} (sgemm {rate:.0f} GFLOP/s) |")
