#!/usr/bin/env python3
"""The PyTorch/HF equivalent of `neoxprobe sweep --probes outliers,cka,lambada` (bench/sweep/run.sh).

Same checkpoints, same tokens, same probes, fp32 on the CPU with torch.set_num_threads(2):
- evaluation tokens: rows ROWS of minipile document.bin, first SEQ_LEN tokens each;
- outliers per layer and site (resid_pre, attn_out, mlp_out, resid_post; forward hooks): max |x|,
  argmax, mean token norm, Pearson kurtosis (all elements and per dimension), top-k dims, in float64;
- linear CKA in float64 of every site against the reference step (last), whose activations are
  kept in memory (the reference runs first, as in the sweep);
- LAMBADA: lm-evaluation-harness 0.4.5 lambada_openai encoding; requests sorted by length and
  batched (right-padded), full logits per batch as HFLM computes them, log_softmax, acc/perplexity.
Writes a long-form CSV (step,layer,site,metric,value) so results can be compared with the sweep's.
Usage: torch_sweep.py SUITE SHARED OUT_CSV ROWS(a:b) SEQ_LEN LAMBADA_LIMIT
"""
import csv
import json
import math
import os
import sys
import time

import numpy as np
import torch

torch.set_num_threads(2)
SITES = ["resid_pre", "attn_out", "mlp_out", "resid_post"]
TOP_K = 8


def read_rows(prefix, lo, hi, length):
    raw = open(prefix + ".idx", "rb").read()
    count = int(np.frombuffer(raw, np.uint64, 1, 18)[0])
    sizes = np.frombuffer(raw, np.int32, count, 34)
    pointers = np.frombuffer(raw, np.int64, count, 34 + 4 * count)
    data = np.memmap(prefix + ".bin", dtype=np.uint16, mode="r")
    return torch.tensor(np.stack([np.array(data[int(pointers[r]) // 2:int(pointers[r]) // 2 + int(sizes[r])][:length], dtype=np.int64)
                                  for r in range(lo, hi)]))


def kurtosis(x, dim=None):
    c = x - x.mean(dim=dim, keepdim=dim is not None) if dim is not None else x - x.mean()
    m2 = (c * c).sum(dim=dim) if dim is not None else (c * c).sum()
    m4 = (c ** 4).sum(dim=dim) if dim is not None else (c ** 4).sum()
    n = x.shape[dim] if dim is not None else x.numel()
    return n * m4 / (m2 * m2)


def outliers(x):
    a = x.abs()
    flat = int(a.argmax())
    token, dim = divmod(flat, x.shape[1])
    per_dim = kurtosis(x, dim=0)
    col_max = a.max(dim=0).values
    order = sorted(range(x.shape[1]), key=lambda j: (-float(col_max[j]), j))[:TOP_K]
    rows = [("max_abs", float(a.max())), ("argmax_dim", dim), ("argmax_token", token),
            ("mean_norm", float(x.norm(dim=1).mean())), ("kurtosis", float(kurtosis(x))),
            ("max_dim_kurtosis", float(per_dim.max())), ("max_dim_kurtosis_dim", int(per_dim.argmax()))]
    for rank, j in enumerate(order, 1):
        rows += [(f"top{rank}_dim", j), (f"top{rank}_max_abs", float(col_max[j]))]
    return rows


def linear_cka(x, y):
    xc, yc = x - x.mean(0), y - y.mean(0)
    return float((yc.T @ xc).norm() ** 2 / ((xc.T @ xc).norm() * (yc.T @ yc).norm()))


def capture(model, tokens):
    acts, handles = {}, []
    for L, layer in enumerate(model.gpt_neox.layers):
        handles.append(layer.register_forward_pre_hook(
            lambda m, a, k, L=L: acts.__setitem__((L, "resid_pre"), (a[0] if a else k["hidden_states"]).detach()), with_kwargs=True))
        handles.append(layer.attention.register_forward_hook(lambda m, a, o, L=L: acts.__setitem__((L, "attn_out"), o[0].detach())))
        handles.append(layer.mlp.register_forward_hook(lambda m, a, o, L=L: acts.__setitem__((L, "mlp_out"), o.detach())))
        handles.append(layer.register_forward_hook(lambda m, a, o, L=L: acts.__setitem__((L, "resid_post"), o[0].detach())))
    with torch.no_grad():
        model.gpt_neox(tokens)  # no unembedding needed for activations
    for h in handles:
        h.remove()
    d = model.config.hidden_size
    return {k: v.reshape(-1, d).double() for k, v in acts.items()}


def lambada_requests(tokenizer, path, limit):
    out = []
    for line in open(path, encoding="utf-8"):
        if len(out) >= limit:
            break
        if not line.strip():
            continue
        words = json.loads(line)["text"].split(" ")
        context, continuation = " ".join(words[:-1]), " " + words[-1]
        if context == "":
            out.append(([0], tokenizer.encode(continuation, add_special_tokens=False)))
            continue
        spaces = len(context) - len(context.rstrip())
        if spaces:
            continuation, context = context[-spaces:] + continuation, context[:-spaces]
        whole = tokenizer.encode(context + continuation, add_special_tokens=False)
        ctx = tokenizer.encode(context, add_special_tokens=False)
        out.append((ctx, whole[len(ctx):]))
    return out


def lambada(model, requests, batch_size=32, max_length=2048):
    inputs = [((c + t)[-(max_length + 1):][:-1], t) for c, t in requests]
    order = sorted(range(len(inputs)), key=lambda i: -len(inputs[i][0]))
    ll, greedy = [0.0] * len(inputs), [False] * len(inputs)
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        T = max(len(inputs[i][0]) for i in batch)
        padded = torch.zeros(len(batch), T, dtype=torch.long)
        for b, i in enumerate(batch):
            padded[b, :len(inputs[i][0])] = torch.tensor(inputs[i][0])
        with torch.no_grad():
            logp = torch.log_softmax(model(padded).logits, dim=-1)
        for b, i in enumerate(batch):
            n, target = len(inputs[i][0]), torch.tensor(inputs[i][1])
            rows = logp[b, n - len(target):n]
            ll[i] = float(rows.gather(-1, target.unsqueeze(-1)).sum())
            greedy[i] = bool((rows.argmax(-1) == target).all())
    return float(np.mean(greedy)), math.exp(-float(np.mean(ll)))


def main():
    suite, shared, out_csv, rows, seq_len, limit = sys.argv[1:7]
    lo, hi = map(int, rows.split(":"))
    from transformers import GPTNeoXForCausalLM, PreTrainedTokenizerFast
    start = time.time()
    steps = sorted(int(n[4:]) for n in os.listdir(suite) if n.startswith("step") and n[4:].isdigit())
    tokens = read_rows(os.path.join(shared, "data/minipile/document"), lo, hi, int(seq_len))
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=os.path.join(shared, "tokenizer/20B_tokenizer.json"))
    requests = lambada_requests(tokenizer, os.path.join(shared, "data/lambada/lambada_test.jsonl"), int(limit))
    reference_step = steps[-1]
    reference = None
    results = []
    for step in [reference_step] + steps[:-1]:
        t0 = time.time()
        model = GPTNeoXForCausalLM.from_pretrained(os.path.join(suite, f"step{step}"), torch_dtype=torch.float32,
                                                   attn_implementation="eager").eval()
        acts = capture(model, tokens)
        if reference is None:
            reference = acts
        for (L, site), x in sorted(acts.items()):
            results += [(step, L, site, m, v) for m, v in outliers(x)]
            results += [(step, L, site, "cka", linear_cka(reference[(L, site)], x)), (step, L, site, "cka_tokens", x.shape[0])]
        acc, ppl = lambada(model, requests)
        results += [(step, "", "lambada", "acc", acc), (step, "", "lambada", "perplexity", ppl)]
        print(f"torch_sweep: step {step} in {time.time() - t0:.2f} s", file=sys.stderr, flush=True)
    with open(out_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "layer", "site", "metric", "value"])
        w.writerows(sorted(results, key=lambda r: r[0]))
    print(f"torch_sweep: {len(steps)} checkpoints in {time.time() - start:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
