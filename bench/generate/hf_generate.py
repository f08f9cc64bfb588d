#!/usr/bin/env python3
"""HF transformers side of bench/generate: greedy generate with the KV cache (fp32, eager attention,
torch.set_num_threads(2)), B equal-length prompts (no padding), exactly NEW tokens each
(min_new_tokens = max_new_tokens, so EOS never ends a row early). Best of REPEATS generate calls.
Prints `generate <seconds>s` and the generated ids (one row a line) for the identity check.
Usage: hf_generate.py MODEL_DIR PROMPTS_FILE NEW REPEATS"""
import sys, time
import torch
from transformers import GPTNeoXForCausalLM

model_dir, prompts_file, new, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(2)
model = GPTNeoXForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32, attn_implementation="eager").eval()
prompts = torch.tensor([[int(t) for t in line.split()] for line in open(prompts_file) if line.strip()])
best, out = float("inf"), None
with torch.no_grad():
    for _ in range(repeats):
        start = time.perf_counter()
        out = model.generate(prompts, max_new_tokens=new, min_new_tokens=new, do_sample=False, use_cache=True,
                             pad_token_id=0, eos_token_id=None)
        best = min(best, time.perf_counter() - start)
print(f"generate {best:.4f}s")
for row in out[:, prompts.shape[1]:].tolist():
    print(" ".join(map(str, row)))
