#!/usr/bin/env python3
"""HF transformers reference for bench/engine: one forward of GPTNeoX (eager attention, fp32,
torch.set_num_threads(2)) on a token file, capturing the same TransformerLens hooks as
`neoxprobe run --hooks PATTERN` into memory (clones, as the Swift engine keeps copies).
Usage: hf_forward.py MODEL_DIR TOKENS_FILE (blocks|all) REPEATS"""
import sys, time, resource
import torch
from transformers import GPTNeoXForCausalLM

model_dir, tokens_file, scope, repeats = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
torch.set_num_threads(2)
t0 = time.perf_counter()
model = GPTNeoXForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32, attn_implementation="eager").eval()
load = time.perf_counter() - t0
tokens = torch.tensor([[int(t) for t in line.split()] for line in open(tokens_file) if line.strip()])

acts = {}
for L, layer in enumerate(model.gpt_neox.layers):
    layer.register_forward_pre_hook(lambda m, a, k, L=L: acts.__setitem__(f"blocks.{L}.hook_resid_pre", (a[0] if a else k["hidden_states"]).clone()), with_kwargs=True)
    layer.register_forward_hook(lambda m, a, o, L=L: acts.__setitem__(f"blocks.{L}.hook_resid_post", o[0].clone()))
    layer.attention.register_forward_hook(lambda m, a, o, L=L: acts.__setitem__(f"blocks.{L}.hook_attn_out", o[0].clone()))
    layer.mlp.register_forward_hook(lambda m, a, o, L=L: acts.__setitem__(f"blocks.{L}.hook_mlp_out", o.clone()))
best = float("inf")
for _ in range(repeats):
    acts.clear()
    t0 = time.perf_counter()
    with torch.no_grad():
        if scope == "all":   # every hook incl. ln_final and logits: the full causal LM
            out = model(tokens, use_cache=False)
            acts["logits"] = out.logits
        else:                # blocks.* only: the base model (its final LayerNorm is the only extra work)
            out = model.gpt_neox(tokens, use_cache=False)
        acts["ln_final.hook_normalized"] = out[0] if scope == "all" else out.last_hidden_state
    best = min(best, time.perf_counter() - t0)
n = tokens.numel()
print(f"hf load {load:.2f}s forward {best:.3f}s {n / best:.1f} tokens/s hooks {len(acts)} "
      f"maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
