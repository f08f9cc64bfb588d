#!/usr/bin/env python3
"""PyTorch's side of bench/grad: every parameter gradient of the mean next-token cross-entropy
(HF labels = input_ids) by fp32 loss.backward() on stock HF transformers (eager attention).
Usage: hf_backward.py MODEL_DIR TOKENS_FILE THREADS REPEATS. Prints one JSON line: loss, best seconds."""
import json, sys, time
import torch
from transformers import GPTNeoXForCausalLM

model_dir, tokens_file, threads, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
model = GPTNeoXForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32, attn_implementation="eager").eval()
with open(tokens_file) as f:
    ids = torch.tensor([[int(x) for x in line.split()] for line in f if line.strip()])
best, loss = float("inf"), None
for _ in range(repeats):
    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    loss = model(ids, labels=ids, use_cache=False).loss
    loss.backward()
    best = min(best, time.perf_counter() - start)
grads = sum(p.grad.numel() for p in model.parameters() if p.grad is not None)
print(json.dumps(dict(loss=float(loss), seconds=best, gradient_elements=grads)))
