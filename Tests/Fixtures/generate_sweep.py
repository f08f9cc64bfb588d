#!/usr/bin/env python3
"""Reference numbers for the sweep tests (Tests/Fixtures/sweep/expected.json), computed with
PyTorch + HF transformers (GPTNeoXForCausalLM, fp32, eager attention) on every pythia-mini step.

Evaluation tokens: rows 0..1 of minipile document.bin, first 256 tokens of each (512 tokens,
token index = sequence * 256 + position).

Activation sites (TransformerLens semantics, via forward hooks):
  resid_pre  = input of gpt_neox.layers[L]
  attn_out   = output[0] of layers[L].attention (after dense, bias included)
  mlp_out    = output of layers[L].mlp
  resid_post = output[0] of layers[L]
Outliers (mirroring Sources/Probes/OutlierStatistics.swift), over the [512, d] matrix in float64:
  max_abs, argmax_token/argmax_dim (first occurrence in row-major order), mean_norm (mean L2 norm
  per token), kurtosis (Pearson, all elements), max_dim_kurtosis(+_dim) (largest per-dimension
  Pearson kurtosis, lowest dim on ties), top<k>_dim / top<k>_max_abs (dims by max |x|, ties: lower).
  near_ties["step|layer|site"]: where other elements lie within NEAR_TIE (relative) of the maximum,
  every (token, dim) of them ("argmax") and every dim of a top<k> rank ("top<k>_dim").
CKA: linear CKA in float64, ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F), X = step2000.
Weights: effective rank exp(-sum p ln p), p = s / sum(s), s = torch.linalg.svdvals (float64) of
  attention.dense.weight and mlp.dense_4h_to_h.weight; per = erank / hidden size.
Perplexity on the same tokens: position t predicts token t+1 of its sequence (255 targets per
  sequence), log_softmax in float64 of the fp32 logits; perplexity = exp(mean NLL).
LAMBADA (first 20 examples): lm-evaluation-harness 0.4.5 lambada_openai encoding and formulas.

Run from the repository root:  ../venv/bin/python Tests/Fixtures/generate_sweep.py
"""
import json
import math
import os

import numpy as np

from fixture_math import kurtosis
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SHARED = os.environ.get("NEOXPROBE_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
SUITE = os.path.join(SHARED, "models", "pythia-mini")
STEPS = [0, 4, 16, 64, 256, 512, 1000, 2000]
REFERENCE = 2000
ROWS = (0, 2)
SEQ_LEN = 256
TOP_K = 8
LAMBADA_LIMIT = 20
SITES = ["resid_pre", "attn_out", "mlp_out", "resid_post"]


def read_rows(prefix, rows, length):
    with open(prefix + ".idx", "rb") as f:
        raw = f.read()
    assert raw[:9] == b"MMIDIDX\x00\x00"
    dtype_code = raw[17]
    assert dtype_code == 8, "expected uint16 tokens"
    count = int(np.frombuffer(raw, np.uint64, 1, 18)[0])
    sizes = np.frombuffer(raw, np.int32, count, 34)
    pointers = np.frombuffer(raw, np.int64, count, 34 + 4 * count)
    data = np.memmap(prefix + ".bin", dtype=np.uint16, mode="r")
    out = []
    for r in range(*rows):
        start = int(pointers[r]) // 2
        row = np.array(data[start:start + int(sizes[r])], dtype=np.int64)
        out.append(row[:length])
    return np.stack(out)


def load_model(step):
    from transformers import GPTNeoXForCausalLM
    model = GPTNeoXForCausalLM.from_pretrained(os.path.join(SUITE, f"step{step}"), torch_dtype=torch.float32,
                                               attn_implementation="eager")
    model.eval()
    return model


def activations(model, tokens):
    captured = {}
    handles = []
    for L, layer in enumerate(model.gpt_neox.layers):
        def pre(module, args, kwargs, L=L):
            hidden = args[0] if args else kwargs["hidden_states"]
            captured[(L, "resid_pre")] = hidden.detach().clone()
        def attn(module, args, output, L=L):
            captured[(L, "attn_out")] = output[0].detach().clone()
        def mlp(module, args, output, L=L):
            captured[(L, "mlp_out")] = output.detach().clone()
        def post(module, args, output, L=L):
            captured[(L, "resid_post")] = output[0].detach().clone()
        handles.append(layer.register_forward_pre_hook(pre, with_kwargs=True))
        handles.append(layer.attention.register_forward_hook(attn))
        handles.append(layer.mlp.register_forward_hook(mlp))
        handles.append(layer.register_forward_hook(post))
    with torch.no_grad():
        logits = model(torch.tensor(tokens)).logits
    for h in handles:
        h.remove()
    d = model.config.hidden_size
    return {k: v.reshape(-1, d).double().numpy() for k, v in captured.items()}, logits


# Elements within this relative distance of a maximum are near ties: two fp32 engines (and one
# engine on two CPUs) may order them either way, so the tests accept any of them.
NEAR_TIE = 1e-5
NEAR_TIES = {}


def outlier_rows(step, layer, site, x):
    a = np.abs(x)
    token, dim = divmod(int(np.argmax(a)), x.shape[1])
    ties = {}
    close = np.argwhere(a >= a.max() * (1 - NEAR_TIE))
    if len(close) > 1:
        ties["argmax"] = [[int(t), int(j)] for t, j in close]
    rows = [("max_abs", float(a.max())), ("argmax_dim", dim), ("argmax_token", token),
            ("mean_norm", float(np.linalg.norm(x, axis=1).mean()))]
    k = kurtosis(x)
    if k is not None:
        rows.append(("kurtosis", k))
    per_dim = [(kurtosis(x[:, j]), j) for j in range(x.shape[1])]
    defined = [(v, j) for v, j in per_dim if v is not None]
    if defined:
        best = max(v for v, _ in defined)
        rows.append(("max_dim_kurtosis", best))
        rows.append(("max_dim_kurtosis_dim", min(j for v, j in defined if v == best)))
    col_max = a.max(axis=0)
    order = sorted(range(x.shape[1]), key=lambda j: (-col_max[j], j))[:TOP_K]
    for rank, j in enumerate(order, 1):
        rows.append((f"top{rank}_dim", j))
        rows.append((f"top{rank}_max_abs", float(col_max[j])))
        close = [int(k) for k in np.flatnonzero(np.abs(col_max - col_max[j]) <= col_max[j] * NEAR_TIE)]
        if len(close) > 1:
            ties[f"top{rank}_dim"] = close
    if ties:
        NEAR_TIES[f"{step}|{layer}|{site}"] = ties
    return [[step, layer, site, m, v] for m, v in rows]


def linear_cka(x, y):
    xc = x - x.mean(axis=0)
    yc = y - y.mean(axis=0)
    return float(np.linalg.norm(yc.T @ xc) ** 2 / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc)))


def effective_rank(matrix):
    s = torch.linalg.svdvals(matrix.double())
    p = s / s.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * torch.log(p)).sum()))


def lambada_requests(tokenizer, path, limit):
    requests = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if len(requests) >= limit:
                break
            if not line.strip():
                continue
            text = json.loads(line)["text"]
            words = text.split(" ")
            context, continuation = " ".join(words[:-1]), " " + words[-1]
            if context == "":
                requests.append(([0], tokenizer.encode(continuation, add_special_tokens=False)))
                continue
            spaces = len(context) - len(context.rstrip())
            if spaces:
                continuation = context[-spaces:] + continuation
                context = context[:-spaces]
            whole = tokenizer.encode(context + continuation, add_special_tokens=False)
            ctx = tokenizer.encode(context, add_special_tokens=False)
            requests.append((ctx, whole[len(ctx):]))
    return requests


def lambada(model, requests, max_length=2048):
    lls, greedy = [], []
    for ctx, cont in requests:
        inp = (ctx + cont)[-(max_length + 1):][:-1]
        with torch.no_grad():
            logits = model(torch.tensor([inp])).logits[0]
        logp = torch.log_softmax(logits.double(), dim=-1)[-len(cont):]
        target = torch.tensor(cont)
        lls.append(float(logp[torch.arange(len(cont)), target].sum()))
        greedy.append(bool((logp.argmax(dim=-1) == target).all()))
    return float(np.mean(greedy)), math.exp(-float(np.mean(lls)))


def main():
    torch.set_num_threads(2)
    from transformers import PreTrainedTokenizerFast
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=os.path.join(SHARED, "tokenizer", "20B_tokenizer.json"))
    requests = lambada_requests(tokenizer, os.path.join(SHARED, "data", "lambada", "lambada_test.jsonl"), LAMBADA_LIMIT)
    tokens = read_rows(os.path.join(SHARED, "data", "minipile", "document"), ROWS, SEQ_LEN)
    per_step = {}
    rows = []
    for step in STEPS:
        model = load_model(step)
        acts, logits = activations(model, tokens)
        per_step[step] = acts
        hidden = model.config.hidden_size
        for L in range(model.config.num_hidden_layers):
            for site in SITES:
                rows += outlier_rows(step, L, site, acts[(L, site)])
            for name in ("attention.dense.weight", "mlp.dense_4h_to_h.weight"):
                w = model.state_dict()[f"gpt_neox.layers.{L}.{name}"]
                erank = effective_rank(w)
                site = f"weights:gpt_neox.layers.{L}.{name}"
                rows.append([step, L, site, "effective_rank", erank])
                rows.append([step, L, site, "per", erank / hidden])
        logp = torch.log_softmax(logits.double(), dim=-1)[:, :-1]
        targets = torch.tensor(tokens)[:, 1:]
        nll = -logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        rows.append([step, None, "eval_tokens", "perplexity", math.exp(float(nll.mean()))])
        rows.append([step, None, "eval_tokens", "nll", float(nll.mean())])
        rows.append([step, None, "eval_tokens", "token_count", int(nll.numel())])
        acc, ppl = lambada(model, requests)
        rows.append([step, None, "lambada", "acc", acc])
        rows.append([step, None, "lambada", "perplexity", ppl])
        print(f"step {step}: done", flush=True)
    reference = per_step[REFERENCE]
    for step in STEPS:
        for (L, site), x in sorted(per_step[step].items()):
            rows.append([step, L, site, "cka", linear_cka(reference[(L, site)], x)])
            rows.append([step, L, site, "cka_tokens", x.shape[0]])
    out = {
        "steps": STEPS, "reference_step": REFERENCE, "rows_range": list(ROWS), "seq_len": SEQ_LEN,
        "top_k": TOP_K, "lambada_limit": LAMBADA_LIMIT,
        "tokens": tokens.tolist(),
        "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__},
        "rows": rows,
        "near_ties": NEAR_TIES, "near_tie_relative": NEAR_TIE,
    }
    os.makedirs(os.path.join(HERE, "sweep"), exist_ok=True)
    with open(os.path.join(HERE, "sweep", "expected.json"), "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(rows)} rows")


if __name__ == "__main__":
    main()
