#!/usr/bin/env python3
"""Writes the fuzz seed corpora (Fuzz/corpus/<target>/) from ../shared: small, real-shaped inputs.

Plain Python 3 (no PyTorch): each seed is cut down from a real file of ../shared, so the fuzzer
starts from the structure the parsers see in practice. Rerun after ../shared changes:
    python3 Fuzz/make_seeds.py [SHARED]
"""
import io
import json
import os
import struct
import subprocess
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "shared"))
OUT = os.path.join(HERE, "corpus")
MINI = os.path.join(SHARED, "models", "pythia-mini")


def steps():
    return sorted(s for s in os.listdir(MINI) if os.path.isdir(os.path.join(MINI, s)))


def write(target, name, data):
    os.makedirs(os.path.join(OUT, target), exist_ok=True)
    with open(os.path.join(OUT, target, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def lengthed(first, rest):
    return struct.pack("<I", len(first)) + first + rest


def safetensors_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n))


def small_safetensors(header, keep, elements):
    """The first `keep` tensors of a real header, each cut to `elements` elements, tiled from 0."""
    sizes = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8}
    out, data, offset = {}, b"", 0
    for name in sorted(k for k in header if k != "__metadata__")[:keep]:
        dtype = header[name]["dtype"]
        count = elements * sizes[dtype]
        out[name] = {"dtype": dtype, "shape": [elements], "data_offsets": [offset, offset + count]}
        data += bytes(range(count % 256)) + b"\0" * (count - count % 256)
        offset += count
    if "__metadata__" in header:
        out["__metadata__"] = header["__metadata__"]
    text = json.dumps(out, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def main():
    header = safetensors_header(os.path.join(MINI, "step0", "model.safetensors"))
    write("safetensors", "real-cut-3", small_safetensors(header, 3, 4))
    write("safetensors", "real-cut-12", small_safetensors(header, 12, 2))
    write("safetensors", "empty", struct.pack("<Q", 2) + b"{}")

    names = sorted(k for k in header if k != "__metadata__")
    half = len(names) // 2
    weight_map = {n: ("model-00001-of-00002.safetensors" if i < half else "model-00002-of-00002.safetensors")
                  for i, n in enumerate(names)}
    write("index", "real", json.dumps({"metadata": {"total_size": 13283712}, "weight_map": weight_map}, indent=2))
    for step in steps():
        for name in os.listdir(os.path.join(MINI, step)):
            if name.endswith(".index.json"):
                with open(os.path.join(MINI, step, name), "rb") as f:
                    write("index", "shared-" + step, f.read())

    for step in steps():
        path = os.path.join(MINI, step, "config.json")
        if os.path.exists(path):
            with open(path, "rb") as f:
                write("config", step, f.read())
            break

    # pytorch_model.bin: the real data.pkl, its storages cut to 16 bytes (sizes then disagree: the
    # reader must say so), and one seed whose storages are the real ones for the first tensor only.
    bins = [os.path.join(MINI, s, "pytorch_model.bin") for s in steps()
            if os.path.exists(os.path.join(MINI, s, "pytorch_model.bin"))]
    if bins:
        with zipfile.ZipFile(bins[0]) as z:
            infos = z.infolist()
            pickle = next(i for i in infos if i.filename.endswith("data.pkl"))
            pkl = z.read(pickle)
            write("pickle", "data.pkl", pkl)
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as out:
                for info in infos:
                    body = z.read(info) if not "/data/" in info.filename else z.read(info)[:16]
                    out.writestr(info.filename, body)
            write("zip", "real-cut", buf.getvalue())
    write("pickle", "proto2-dict", b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01K\x01X\x01\x00\x00\x00bq\x02]q\x03(K\x02G?\xf0\x00\x00\x00\x00\x00\x00e\x86q\x04u.")

    # tokenizer.json: the 20B tokenizer's structure with the first 400 vocabulary entries and the
    # merges among them.
    with open(os.path.join(SHARED, "tokenizer", "20B_tokenizer.json"), encoding="utf-8") as f:
        tok = json.load(f)
    vocab = {k: v for k, v in tok["model"]["vocab"].items() if v < 400}
    merges = []
    for m in tok["model"]["merges"]:
        a, b = m.split(" ") if isinstance(m, str) else m
        if a in vocab and b in vocab and a + b in vocab:
            merges.append(m)
    tok["model"]["vocab"] = vocab
    tok["model"]["merges"] = merges
    tok["added_tokens"] = [t for t in tok["added_tokens"] if t["id"] < 2]
    write("tokenizer", "20B-cut", json.dumps(tok, ensure_ascii=False))

    # document.idx/.bin: the first 6 sequences of the mini Pile, re-indexed.
    prefix = os.path.join(SHARED, "data", "minipile", "document")
    with open(prefix + ".idx", "rb") as f:
        idx = f.read()
    magic, version, dtype_code, count, doc_count = idx[:9], idx[9:17], idx[17], *struct.unpack("<QQ", idx[18:34])
    sizes = struct.unpack("<%di" % count, idx[34:34 + 4 * count])
    pointers = struct.unpack("<%dq" % count, idx[34 + 4 * count:34 + 12 * count])
    width = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 4, 7: 8, 8: 2}[dtype_code]
    keep = 6
    with open(prefix + ".bin", "rb") as f:
        bin_data = f.read(pointers[keep - 1] + sizes[keep - 1] * width)
    small = (magic + version + bytes([dtype_code]) + struct.pack("<QQ", keep, keep + 1)
             + struct.pack("<%di" % keep, *sizes[:keep]) + struct.pack("<%dq" % keep, *pointers[:keep])
             + struct.pack("<%dq" % (keep + 1), *range(keep + 1)))
    write("idx", "minipile-6", lengthed(small, bin_data))

    with open(os.path.join(SHARED, "data", "lambada", "lambada_test.jsonl"), encoding="utf-8") as f:
        lines = [next(f) for _ in range(4)]
    write("jsonl", "lambada-4", "".join(lines))
    pile = [json.dumps({"text": "Hello\nworld", "meta": {"pile_set_name": "Pile-CC"}}),
            json.dumps({"text": "def f():\r\n  return 1", "meta": {"pile_set_name": "Github"}})]
    write("jsonl", "pile-2", "\n".join(pile) + "\n")
    zst = subprocess.run(["zstd", "-q", "-c", "-3"], input=("\n".join(pile) + "\n").encode(),
                         stdout=subprocess.PIPE, check=True).stdout
    write("jsonl", "pile-2.zst", zst)

    write("tokens", "batch", "510 3158 8516\r\n12 13 14\n")
    write("tokens", "ragged", "1\n\n2 3 4   5\n")

    metrics = "step,layer,site,metric,value\n" + "".join(
        f"{s},{l},resid_post,kurtosis,{1.5 + s / 1000 + l}\n{s},{l},resid_post,hist_bin_00_of_04,{l + 1}\n"
        for s in (0, 16, 2000) for l in (0, 1)) + "2000,,eval,lambada_acc,0.25\n"
    run = json.dumps({"suite": "pythia-mini", "steps": [0, 16, 2000], "probes": ["outliers", "lambada"]})
    write("metrics", "small", lengthed(run.encode(), metrics.encode()))
    write("metrics", "no-run", lengthed(b"", metrics.encode()))


if __name__ == "__main__":
    main()
