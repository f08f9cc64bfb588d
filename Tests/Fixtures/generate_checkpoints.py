#!/usr/bin/env python3
"""Regenerates the checkpoint fixtures under Tests/Fixtures/checkpoints/ from the reference libraries.

Run with the reference environment:  ../venv/bin/python Tests/Fixtures/generate_checkpoints.py

Everything the Checkpoint* tests expect comes from here (torch 2.5 / safetensors / transformers 4.49);
nothing is hand-typed in the tests. Tensors are compared by SHA-256 of their values widened to fp32
(little-endian, row-major), which is exact: fp16/bf16 -> fp32 is lossless.

Tensor values are seeded and reproducible; the .bin zips still differ byte-wise between runs because
torch writes a random .data/serialization_id into each archive.

Outputs:
* pythia-mini.json: for every step of ../shared/models/pythia-mini, its layout, every tensor in its
  weight files as torch/safetensors read them (dtype, shape, fp32 SHA-256), and the names a
  GPTNeoXForCausalLM built from its config.json actually has (the buffers old files carry are not among
  them).
* torch/*.bin: small torch.save files exercising the pickle subset (OrderedDict with _metadata,
  Parameters, shared storages with offsets, 0-d and empty tensors, every common dtype), and files a
  loader must refuse (non-contiguous tensor, forbidden global, legacy format, compressed storages,
  big-endian byteorder, non-tensor entry); torch.json lists what the good ones hold.
* tiny-sharded-bin/, tiny-safetensors/: a tiny GPT-NeoX saved by transformers as sharded
  pytorch_model-*.bin with pytorch_model.bin.index.json, and as one model.safetensors;
  tiny-*.json list their tensors.
"""
import collections
import hashlib
import json
import os
import shutil
import zipfile

import numpy as np
import torch
from safetensors import safe_open

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
MINI = os.path.join(SHARED, "models", "pythia-mini")
OUT = os.path.join(HERE, "checkpoints")

DTYPES = {
    torch.float16: "F16", torch.bfloat16: "BF16", torch.float32: "F32", torch.float64: "F64",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL",
}


def describe(tensor):
    """dtype, shape, SHA-256 of the raw row-major bytes, and (floats) of the fp32-widened values."""
    t = tensor.detach().contiguous()
    record = {"dtype": DTYPES[t.dtype], "shape": list(t.shape)}
    raw = t.view(torch.int16) if t.dtype == torch.bfloat16 else t
    record["raw_sha256"] = hashlib.sha256(raw.numpy().tobytes()).hexdigest()
    if t.is_floating_point():
        record["fp32_sha256"] = hashlib.sha256(t.float().numpy().astype("<f4").tobytes()).hexdigest()
    return record


def read_directory(path):
    """The tensors of one model directory, read the way transformers would."""
    files = sorted(os.listdir(path))
    tensors = {}
    if "model.safetensors.index.json" in files:
        layout = "shardedSafetensors"
        with open(os.path.join(path, "model.safetensors.index.json")) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
    elif "model.safetensors" in files:
        layout, shards = "safetensors", ["model.safetensors"]
    elif "pytorch_model.bin.index.json" in files:
        layout = "shardedPytorchBin"
        with open(os.path.join(path, "pytorch_model.bin.index.json")) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
    else:
        layout, shards = "pytorchBin", ["pytorch_model.bin"]
    for shard in shards:
        full = os.path.join(path, shard)
        if shard.endswith(".safetensors"):
            with safe_open(full, framework="pt") as f:
                for name in f.keys():
                    tensors[name] = describe(f.get_tensor(name))
        else:
            for name, value in torch.load(full, weights_only=True, map_location="cpu").items():
                tensors[name] = describe(value)
    return layout, shards, tensors


def model_names(path):
    """Names of the tensors GPTNeoXForCausalLM (transformers 4.49) holds for this config."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM
    config = GPTNeoXConfig.from_pretrained(path)
    with torch.device("meta"):
        model = GPTNeoXForCausalLM(config)
    return sorted(model.state_dict().keys())


def pythia_mini():
    steps = {}
    for step in sorted(os.listdir(MINI)):
        path = os.path.join(MINI, step)
        if not os.path.isdir(path):
            continue
        layout, shards, tensors = read_directory(path)
        steps[step] = {"layout": layout, "shards": shards, "tensors": tensors, "model_names": model_names(path)}
    return {"steps": steps}


def rezip(source, target, compress, byteorder=None):
    """Copies a torch zip, deflating the entries `compress` selects, optionally replacing byteorder."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if byteorder is not None and info.filename.endswith("/byteorder"):
                data = byteorder.encode()
            method = zipfile.ZIP_DEFLATED if compress(info.filename) else zipfile.ZIP_STORED
            zout.writestr(zipfile.ZipInfo(info.filename), data, compress_type=method)


class Evil:
    """An object whose unpickling would run a shell command: a loader must refuse its global."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def torch_files():
    directory = os.path.join(OUT, "torch")
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    torch.manual_seed(1234)  # nn.Linear's initialisation
    generator = torch.Generator().manual_seed(1234)

    # Module.state_dict(): an OrderedDict carrying _metadata (pickled via BUILD).
    linear = torch.nn.Linear(3, 2).half()
    state = linear.state_dict()
    base = torch.randn(10, generator=generator)
    state["shared.whole"] = base
    state["shared.tail"] = base[3:7]  # same storage, storage_offset 3
    state["shared.matrix"] = base[4:10].view(2, 3)
    state["scalar"] = torch.tensor(2.5, dtype=torch.float64)
    state["empty"] = torch.zeros(0, 4)
    state["column"] = torch.randn(1, 4, generator=generator).t()  # size-1 dim with stride 4: contiguous
    state["bf16"] = torch.randn(3, 5, generator=generator).bfloat16()
    state["f64"] = torch.randn(2, 2, generator=generator).double()
    state["i64"] = torch.arange(-3, 300, 7, dtype=torch.int64)
    state["i32"] = torch.arange(12, dtype=torch.int32).view(3, 4)
    state["u8"] = torch.arange(200, 256, dtype=torch.uint8)
    state["mask"] = torch.tensor([True, False, True])
    torch.save(state, os.path.join(directory, "assorted.bin"))

    parameters = {"weight": torch.nn.Parameter(torch.randn(4, 3, generator=generator)),
                  "bias": torch.nn.Parameter(torch.randn(4, generator=generator), requires_grad=False)}
    torch.save(parameters, os.path.join(directory, "parameters.bin"))

    expected = {"assorted.bin": {k: describe(v) for k, v in state.items()},
                "parameters.bin": {k: describe(v) for k, v in parameters.items()}}

    # Same contents, data.pkl deflated: still loadable (only storages must be stored).
    rezip(os.path.join(directory, "assorted.bin"), os.path.join(directory, "deflated_pickle.bin"),
          lambda name: name.endswith("/data.pkl"))
    expected["deflated_pickle.bin"] = expected["assorted.bin"]

    # Files a loader must refuse.
    rezip(os.path.join(directory, "assorted.bin"), os.path.join(directory, "deflated_storage.bin"),
          lambda name: "/data/" in name)
    rezip(os.path.join(directory, "assorted.bin"), os.path.join(directory, "bigendian.bin"),
          lambda name: False, byteorder="big")
    torch.save({"ok": torch.ones(2), "transposed": torch.arange(6.0).view(2, 3).t()},
               os.path.join(directory, "noncontiguous.bin"))
    torch.save({"weight": torch.ones(2), "evil": Evil()}, os.path.join(directory, "forbidden_global.bin"))
    torch.save({"weight": torch.ones(2)}, os.path.join(directory, "legacy.bin"), _use_new_zipfile_serialization=False)
    torch.save({"weight": torch.ones(2), "step": 5}, os.path.join(directory, "not_tensor.bin"))

    with open(os.path.join(OUT, "torch.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)


def tiny_models():
    """The same tiny GPT-NeoX saved as sharded .bin and as one model.safetensors (the malformed
    safetensors cases in the tests are derived from the latter)."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM
    torch.manual_seed(7)
    config = GPTNeoXConfig(vocab_size=32, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=16, max_position_embeddings=64, rotary_pct=0.5)
    model = GPTNeoXForCausalLM(config).half()
    for name, options in (("tiny-sharded-bin", dict(safe_serialization=False, max_shard_size="1KB")),
                          ("tiny-safetensors", dict(safe_serialization=True))):
        directory = os.path.join(OUT, name)
        shutil.rmtree(directory, ignore_errors=True)
        model.save_pretrained(directory, **options)
        if os.path.exists(os.path.join(directory, "generation_config.json")):
            os.remove(os.path.join(directory, "generation_config.json"))
        layout, shards, tensors = read_directory(directory)
        with open(os.path.join(OUT, name + ".json"), "w") as f:
            json.dump({"layout": layout, "shards": shards, "tensors": tensors, "model_names": model_names(directory)},
                      f, indent=1, sort_keys=True)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch_files()
    tiny_models()
    with open(os.path.join(OUT, "pythia-mini.json"), "w") as f:
        json.dump(pythia_mini(), f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
