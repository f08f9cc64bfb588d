#!/usr/bin/env python3
"""Random-weight fp16 checkpoint of a real Pythia shape, written tensor by tensor.

Usage: make_checkpoint.py SIZE OUT_DIR [SEED]   (SIZE: a key of Tests/Fixtures/pythia-suite-configs.json)

The tensor names and shapes come from HF transformers itself: `GPTNeoXForCausalLM(config)` is built
on the meta device (no memory), and each parameter of its state dict is then drawn on its own
(normal(0, 0.02) weights, zero biases, LayerNorm weights 1 + normal(0, 0.02)), in fp16, and added
to the current shard; a shard is written (safetensors, with `model.safetensors.index.json`) once it
reaches SHARD_BYTES (default 2 GB). Peak memory is one shard plus one fp32 tensor, never the
model's fp32 size, so a 12b-shaped checkpoint can be written on a 24 GiB machine.
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
TABLE = os.path.join(HERE, "..", "..", "Tests", "Fixtures", "pythia-suite-configs.json")


def config_for(size):
    table = json.load(open(TABLE))
    fields = dict(table["common"])
    fields.update({k: v for k, v in table["sizes"][size].items() if k != "parameters"})
    fields["torch_dtype"] = "float16"
    return GPTNeoXConfig(**{k: v for k, v in fields.items() if k != "architectures"}), fields


def main():
    size, out = sys.argv[1], sys.argv[2]
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    shard_bytes = int(os.environ.get("SHARD_BYTES", 2_000_000_000))
    config, fields = config_for(size)
    with torch.device("meta"):
        model = GPTNeoXForCausalLM(config)
    shapes = [(name, tuple(t.shape)) for name, t in model.state_dict().items()
              if not name.endswith((".attention.bias", ".attention.masked_bias", "rotary_emb.inv_freq"))]
    del model
    os.makedirs(out, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    shards, current, current_bytes, weight_map = [], {}, 0, {}

    def flush():
        nonlocal current, current_bytes
        if not current:
            return
        name = f"model-{len(shards) + 1:05d}.safetensors"
        save_file(current, os.path.join(out, name + ".tmp"), metadata={"format": "pt"})
        shards.append(name)
        for tensor in current:
            weight_map[tensor] = name
        current, current_bytes = {}, 0

    for name, shape in shapes:
        if name.endswith(".bias"):
            t = torch.zeros(shape, dtype=torch.float16)
        elif "layernorm" in name or "layer_norm" in name:
            t = (1 + 0.02 * torch.randn(shape, generator=generator)).half()
        else:
            t = torch.empty(shape, dtype=torch.float16)
            rows = max(1, (1 << 26) // max(1, shape[-1]))   # at most 64M fp32 values at a time
            for r in range(0, shape[0], rows):
                t[r:r + rows] = (0.02 * torch.randn((min(rows, shape[0] - r),) + shape[1:], generator=generator)).half()
        nbytes = t.numel() * 2
        if current and current_bytes + nbytes > shard_bytes:
            flush()
        current[name] = t
        current_bytes += nbytes
    flush()
    total = {"metadata": {"total_size": sum(2 * torch.Size(s).numel() for _, s in shapes)}, "weight_map": weight_map}
    if len(shards) == 1:
        os.replace(os.path.join(out, shards[0] + ".tmp"), os.path.join(out, "model.safetensors"))
    else:
        for name in shards:
            os.replace(os.path.join(out, name + ".tmp"), os.path.join(out, name))
        json.dump(total, open(os.path.join(out, "model.safetensors.index.json"), "w"), indent=2)
    json.dump(fields, open(os.path.join(out, "config.json"), "w"), indent=2)
    print(f"{size}: {len(shapes)} tensors, {total['metadata']['total_size'] / 1e9:.2f} GB fp16 in {len(shards)} file(s) -> {out}")


if __name__ == "__main__":
    main()
