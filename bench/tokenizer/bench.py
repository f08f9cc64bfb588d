#!/usr/bin/env python3
"""Times HF `tokenizers` vs `neoxprobe tokenize` on the minipile train text, single-threaded.

Input: every document of ../shared/data/minipile/train.jsonl.zst, joined by "\n" into one text.
HF: Tokenizer.encode on each document in a Python loop (TOKENIZERS_PARALLELISM=false,
RAYON_NUM_THREADS=1: one thread), its best case, since HF is much slower on the single 31 MB string
(also timed once, and used to check the ids). Swift gets the concatenated text as one file.
Swift: the release `neoxprobe tokenize --tokenizer T FILE` process end to end (tokenizer load,
file read, encode, printing ids), best of N runs; HF is timed on encode alone, plus its load time
reported separately. Also checks that both produce the same ids.
Usage: bench.py NEOXPROBE_BINARY [repeats]
"""
import os
import subprocess
import sys
import tempfile
import time

os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["RAYON_NUM_THREADS"] = "1"
from tokenizers import Tokenizer  # noqa: E402
import json  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
TOKENIZER = os.path.join(SHARED, "tokenizer", "20B_tokenizer.json")


def main():
    binary = sys.argv[1]
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    raw = subprocess.run(["zstd", "-dc", os.path.join(SHARED, "data/minipile/train.jsonl.zst")],
                         check=True, capture_output=True).stdout
    texts = [json.loads(line)["text"] for line in raw.decode("utf-8").splitlines() if line.strip()]
    text = "\n".join(texts)
    data = text.encode("utf-8")
    with tempfile.NamedTemporaryFile(suffix=".txt", delete=False) as f:
        f.write(data)
        path = f.name

    t0 = time.perf_counter()
    tok = Tokenizer.from_file(TOKENIZER)
    hf_load = time.perf_counter() - t0
    hf_times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for doc in texts:
            tok.encode(doc)
        hf_times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    ids = tok.encode(text).ids  # the exact input the CLI gets, for the id check
    hf_whole = time.perf_counter() - t0

    swift_times = []
    out = b""
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = subprocess.run([binary, "tokenize", "--tokenizer", TOKENIZER, path], check=True, capture_output=True).stdout
        swift_times.append(time.perf_counter() - t0)
    os.unlink(path)
    swift_ids = [int(x) for x in out.split()]
    same = swift_ids == ids

    mb = len(data) / 1e6
    hf, sw = min(hf_times), min(swift_times)
    print(f"input: {len(texts)} documents, {len(data)} bytes, {len(ids)} tokens; ids identical: {same}")
    print(f"HF tokenizers encode per document (1 thread, load {hf_load:.2f}s excluded): best {hf:.3f}s = {mb / hf:.2f} MB/s")
    print(f"HF tokenizers encode of the whole concatenated text once: {hf_whole:.3f}s = {mb / hf_whole:.2f} MB/s")
    print(f"neoxprobe tokenize (whole process incl. load+print): best {sw:.3f}s = {mb / sw:.2f} MB/s")
    print(f"throughput ratio Swift/HF: {hf / sw:.2f}x")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
