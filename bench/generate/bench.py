#!/usr/bin/env python3
"""bench/generate: `neoxprobe generate` vs HF `model.generate` (greedy, KV cache, fp32, 2 threads) on a
random-weight pythia-160m-shaped model, 32-token prompts (mini-Pile rows 1.., first 32 tokens),
128 new tokens, batch 1 and 16. Each side is its own process under /usr/bin/time -v (peak RSS);
generation time excludes loading (Swift: the `seconds.generate` of --json, one generate per process;
HF: best of REPEATS generate calls in one process). Swift and HF alternate ROUNDS times per batch size
and each keeps its fastest round. Also reports whether the greedy tokens are identical.
Usage: bench.py NEOXPROBE_BINARY PYTHON MODEL_DIR DATA_PREFIX REPEATS"""
import json, os, re, subprocess, sys
import numpy as np

binary, python, model, prefix, repeats = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
here = os.path.dirname(os.path.abspath(__file__))
NEW, PROMPT = 128, 32
rounds = int(os.environ.get("ROUNDS", "2"))


def rows(count):
    with open(prefix + ".idx", "rb") as f:
        raw = f.read()
    n = int(np.frombuffer(raw, np.uint64, 1, 18)[0])
    sizes = np.frombuffer(raw, np.int32, n, 34)
    pointers = np.frombuffer(raw, np.int64, n, 34 + 4 * n)
    data = np.memmap(prefix + ".bin", dtype=np.uint16, mode="r")
    return [data[pointers[r] // 2:pointers[r] // 2 + PROMPT].tolist() for r in range(1, 1 + count)]


def timed(cmd):
    out = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True, check=True)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr).group(1)) / 1024
    return out.stdout, rss


table = []
for batch in (1, 16):
    path = os.path.join(os.path.dirname(model), f"prompts_b{batch}.txt")
    with open(path, "w") as f:
        f.write("".join(" ".join(map(str, r)) + "\n" for r in rows(batch)))
    swift, hf, identical = [], [], None
    for _ in range(rounds):
        out, rss = timed([binary, "generate", "--model", model, "--tokens", "@" + path, "--max-new-tokens", str(NEW),
                          "--greedy", "--ignore-eos", "--json"])
        result = json.loads(out)
        swift.append((result["seconds"]["generate"], rss))
        ours = [s["tokens"] for s in result["sequences"]]
        out, rss = timed([python, os.path.join(here, "hf_generate.py"), model, path, str(NEW), repeats])
        lines = out.strip().split("\n")
        hf.append((float(re.search(r"generate ([\d.]+)s", lines[0]).group(1)), rss))
        theirs = [[int(t) for t in line.split()] for line in lines[1:]]
        identical = ours == theirs if identical is None else identical and ours == theirs
    (st, sr), (ht, hr) = min(swift), min(hf)
    table.append((batch, st, sr, ht, hr, identical))

print("| batch | Swift tokens/s | HF tokens/s | speed-up | Swift peak RSS | HF peak RSS | greedy tokens identical |")
print("|---|---|---|---|---|---|---|")
for batch, st, sr, ht, hr, same in table:
    n = batch * NEW
    print(f"| {batch} | {n / st:.1f} ({st:.2f} s) | {n / ht:.1f} ({ht:.2f} s) | {ht / st:.2f}× | {sr:.0f} MiB | {hr:.0f} MiB | {'yes' if same else 'no'} |")
