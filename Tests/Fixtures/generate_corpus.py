#!/usr/bin/env python3
"""Generate the Corpus module's reference fixtures (Tests/Fixtures/corpus/*).

Every expected value the CorpusTests compare against comes from here, computed with independent
Python tooling: the `zstd` CLI (or the `zstandard` module if installed) + `json` for the Pile shards,
`numpy.memmap` for the Megatron .bin/.idx, and Python's own `str.split(' ')` for LAMBADA.

Usage (from the repo root):  python3 Tests/Fixtures/generate_corpus.py [--shared ../shared]
Needs python3 with numpy and the `zstd` command (or `pip install zstandard`).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")
ROOT = os.path.dirname(os.path.dirname(HERE))

MASK64 = (1 << 64) - 1


def fnv1a64(data: bytes) -> int:
    """FNV-1a 64-bit: trivial to reimplement in the Swift tests, fine for equality checks."""
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & MASK64
    return h


def hex64(v: int) -> str:
    return "%016x" % v


def zstd_decompress(path: str) -> bytes:
    try:
        import zstandard  # type: ignore
        with open(path, "rb") as f:
            return zstandard.ZstdDecompressor().stream_reader(f).read()
    except ImportError:
        return subprocess.run(["zstd", "-dc", path], check=True, stdout=subprocess.PIPE).stdout


def zstd_compress(data: bytes) -> bytes:
    if shutil.which("zstd"):
        return subprocess.run(["zstd", "-q", "-c", "-19", "--check"], input=data, check=True,
                              stdout=subprocess.PIPE).stdout
    import zstandard  # type: ignore
    return zstandard.ZstdCompressor(level=19, write_checksum=True).compress(data)


def minipile(shared: str) -> dict:
    result = {}
    for split in ("train", "val"):
        path = os.path.join(shared, "data", "minipile", f"{split}.jsonl.zst")
        raw = zstd_decompress(path)
        docs = [json.loads(line) for line in raw.decode("utf-8").split("\n") if line.strip()]
        texts = [d["text"] for d in docs]
        names = [d.get("meta", {}).get("pile_set_name") for d in docs]
        n = len(docs)
        picks = sorted({0, 1, 2, n // 3, n // 2, n - 2, n - 1})
        set_counts = {}
        for name in names:
            set_counts[name] = set_counts.get(name, 0) + 1
        result[split] = {
            "count": n,
            "setCounts": set_counts,
            "utf8Lengths": [len(t.encode("utf-8")) for t in texts],
            "scalarLengths": [len(t) for t in texts],
            "setNames": names,
            "totalUTF8Bytes": sum(len(t.encode("utf-8")) for t in texts),
            "samples": [
                {"index": i, "setName": names[i], "utf8Length": len(texts[i].encode("utf-8")),
                 "fnv1a64": hex64(fnv1a64(texts[i].encode("utf-8"))), "prefix": texts[i][:80]}
                for i in picks
            ],
        }
    return result


def row_stats(row: np.ndarray) -> dict:
    r = row.astype(np.int64)
    weights = np.arange(1, len(r) + 1, dtype=np.int64)
    return {"length": int(len(r)), "sum": int(r.sum()), "weightedSum": int((r * weights).sum()),
            "first": [int(x) for x in r[:8]], "last": int(r[-1]), "eodCount": int((r == 0).sum())}


def indexed(shared: str) -> dict:
    prefix = os.path.join(shared, "data", "minipile", "document")
    with open(prefix + ".idx", "rb") as f:
        head = f.read(34)
    assert head[:9] == b"MMIDIDX\x00\x00"
    version = int(np.frombuffer(head, np.uint64, 1, 9)[0])
    code = head[17]
    count = int(np.frombuffer(head, np.uint64, 1, 18)[0])
    doc_count = int(np.frombuffer(head, np.uint64, 1, 26)[0])
    idx = np.memmap(prefix + ".idx", dtype=np.uint8, mode="r")
    sizes = np.frombuffer(idx, np.int32, count, 34)
    pointers = np.frombuffer(idx, np.int64, count, 34 + 4 * count)
    doc_idx = np.frombuffer(idx, np.int64, doc_count, 34 + 12 * count)
    dtypes = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 6: np.float32,
              7: np.float64, 8: np.uint16}
    tokens = np.memmap(prefix + ".bin", dtype=dtypes[code], mode="r")
    width = np.dtype(dtypes[code]).itemsize

    def row(i):
        start = int(pointers[i]) // width
        return np.asarray(tokens[start:start + int(sizes[i])])

    picks = [0, 1, 2, 1234, count // 2, count - 1]
    # 0-based training step s consumes samples [s*B, (s+1)*B), sample k = row k mod count. The mini
    # suite's checkpoint step2000 is the state after 2000 updates (steps 0..1999), so its last batch
    # is step 1999: samples 7996..7999 (README: "Step 2000's batch is rows 7996..7999 mod 4391").
    step, batch = 1999, 4
    step_rows = [(step * batch + j) % count for j in range(batch)]
    assert [step * batch + j for j in range(batch)] == [7996, 7997, 7998, 7999]
    big_step, big_batch = 4, 1024  # wraps past the end: rows 4096..5119 mod count
    big_rows = [(big_step * big_batch + j) % count for j in range(big_batch)]
    combined = 0
    for j, r in enumerate(big_rows):
        combined = (combined + (j + 1) * row_stats(row(r))["weightedSum"]) & MASK64
    return {
        "version": version, "dtypeCode": int(code), "count": count, "docCount": doc_count,
        "binBytes": os.path.getsize(prefix + ".bin"),
        "distinctRowLengths": sorted({int(s) for s in sizes}),
        "docIndexSum": int(doc_idx.sum()), "docIndexLast": int(doc_idx[-1]),
        "rows": {str(i): row_stats(row(i)) for i in picks},
        "step": {"step": step, "batchSize": batch, "rows": step_rows,
                 "stats": [row_stats(row(r)) for r in step_rows]},
        "bigStep": {"step": big_step, "batchSize": big_batch, "firstRows": big_rows[:3],
                    "lastRow": big_rows[-1], "combinedWeightedSum": str(combined)},
    }


def lambada(shared: str) -> dict:
    path = os.path.join(shared, "data", "lambada", "lambada_test.jsonl")
    with open(path, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()]
    examples = []
    for t in texts:
        # lm-evaluation-harness lambada_openai: doc_to_text / doc_to_target templates.
        words = t.split(" ")
        context, target = " ".join(words[:-1]), " " + words[-1]
        if " " in t:
            c2, last = t.rsplit(" ", 1)
            assert (c2, " " + last) == (context, target)
        examples.append((context, target))
    blob = b"".join(c.encode() + b"\x00" + t.encode() + b"\x01" for c, t in examples)
    # Where splitting on ' ' differs from splitting on whitespace: a newline inside the last
    # "word" (all of them), and double spaces (the first 20).
    odd = [i for i, (c, t) in enumerate(examples) if any(ch.isspace() for ch in t[1:])]
    odd += [i for i, t in enumerate(texts) if "  " in t and i not in odd][:20]
    synthetic = ["a  b", "a b ", "nospace", "", " lead", "two  ", "e \u0301x", "a\u00a0b c",
                 "tab\tsep last", "line\nbreak", "  ", "\U0001F680 \U0001F680"]
    return {
        "count": len(texts),
        "allFnv1a64": hex64(fnv1a64(blob)),
        "first": [{"index": i, "context": c, "target": t} for i, (c, t) in enumerate(examples[:50])],
        "unusualSpacing": [{"index": i, "context": examples[i][0], "target": examples[i][1]} for i in odd],
        "synthetic": [{"text": t, "context": " ".join(t.split(" ")[:-1]), "target": " " + t.split(" ")[-1]}
                      for t in synthetic],
    }


def tiny_corpus() -> None:
    """A hand-sized shard (two zstd frames) for the error and chunk-boundary tests."""
    records = [
        {"text": "First document.\nIt has two lines.", "meta": {"pile_set_name": "PythonDocs"}},
        {"text": "Ünïcödé — “quotes”, emoji 🚀, CJK 漢字.", "meta": {"pile_set_name": "Github"}},
        {"text": "", "meta": {"pile_set_name": "PerlDocs"}},
        {"text": "No meta at all."},
        {"text": "x" * 5000, "meta": {"pile_set_name": "Github"}},
        {"text": "Escapes: \t tab, \\ backslash, \" quote, \u0001 control.", "meta": {"pile_set_name": "PythonDocs"}},
    ]
    lines = [json.dumps(r, ensure_ascii=(i % 2 == 0)) for i, r in enumerate(records)]
    text = ("\n".join(lines) + "\n").encode("utf-8")
    with open(os.path.join(OUT, "tiny.jsonl"), "wb") as f:
        f.write(text)
    half = len(lines) // 2
    part1 = ("\n".join(lines[:half]) + "\n").encode("utf-8")
    part2 = ("\n".join(lines[half:]) + "\n").encode("utf-8")
    with open(os.path.join(OUT, "tiny.jsonl.zst"), "wb") as f:
        f.write(zstd_compress(part1) + zstd_compress(part2))
    expected = [{"index": i, "text": r["text"], "setName": r.get("meta", {}).get("pile_set_name"),
                 "utf8Length": len(r["text"].encode("utf-8")), "fnv1a64": hex64(fnv1a64(r["text"].encode()))}
                for i, r in enumerate(records)]
    with open(os.path.join(OUT, "tiny_expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, indent=1)
        f.write("\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=os.path.join(os.path.dirname(ROOT), "shared"))
    args = parser.parse_args()
    os.makedirs(OUT, exist_ok=True)
    tiny_corpus()
    for name, fn in (("minipile", minipile), ("indexed", indexed), ("lambada", lambada)):
        value = fn(args.shared)
        with open(os.path.join(OUT, f"{name}.json"), "w", encoding="utf-8") as f:
            json.dump(value, f, ensure_ascii=False, indent=1)
            f.write("\n")
        print(f"wrote {name}.json", file=sys.stderr)


if __name__ == "__main__":
    main()
