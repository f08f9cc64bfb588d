#!/usr/bin/env python3
"""Reference fixtures for generation (run with ../venv/bin/python from the repo root).

1. Greedy continuations by HF `model.generate(do_sample=False)` (fp32, eager attention, KV cache)
   with `output_logits=True`, for each tiny engine fixture model (Tests/Fixtures/engine/<name>,
   written by generate_engine.py) and every pythia-mini step, on prompts of several lengths.
   Each prompt is generated ALONE (batch 1, no padding): HF's batched generate left-pads and
   shifts GPT-NeoX's rotary positions (transformers #22161), so unpadded single runs are the
   reference for our batched, unpadded decoding too. EOS is the config's `eos_token_id`; HF stops
   after emitting it (the EOS token is included).
   -> generation/<name>.json (prompts, generated ids) + generation/<name>.safetensors
      (`p<i>.logits` [steps, V] for tiny models; for pythia-mini `p<i>.logits` holds the logits
      at vocabulary ids 0, 251, 502, … (`logit_stride`) and `p<i>.chosen` the logit of each
      generated token, to keep the file small).
2. Memorization as Biderman et al. 2023 / EleutherAI's eval_memorization.py compute it:
   rows of the pre-tokenized training data, context = row[:32], true continuation = row[32:64],
   `generate(context, temperature=0.0, top_k=0, top_p=0, max_length=64, min_length=64)` (greedy;
   min_length suppresses EOS), score = mean(generated == true) per row.
   -> generation/memorization.json
3. LAMBADA generation (Nicolini et al., "The Garden of Forking Paths") on the first examples:
   see lambada_generation() for exactly what is computed. -> generation/lambada_generation.json
"""
import json, math, os, sys
import numpy as np
import torch
import torch.nn.functional as F
from transformers import GPTNeoXForCausalLM
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from generate_eval import encode_request, lambada_split, load_tokenizer, read_bin_rows  # noqa: E402

OUT = os.path.join(HERE, "generation")
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared"))
STEPS = ["step0", "step4", "step16", "step64", "step256", "step512", "step1000", "step2000"]
TINY = {
    # name: (prompt lengths, max_new_tokens)
    "parallel_erf_r025": ([1, 4, 11, 23], 20),
    "sequential_tanh_r100": ([2, 5, 9], 12),
    "parallel_tanh_nobias_tied": ([3, 8, 17], 12),
    "sequential_relu_r025": ([1, 3, 6], 8),
}
PYTHIA_PROMPTS = [1, 5, 13, 32]
PYTHIA_NEW = 16
LOGIT_STRIDE = 251
MEMO_ROWS = (0, 32)
LAMBADA_COUNT = 24
UNMASK_K = 6
torch.set_num_threads(2)


def load(path):
    return GPTNeoXForCausalLM.from_pretrained(path, torch_dtype=torch.float32, attn_implementation="eager").eval()


@torch.no_grad()
def hf_greedy(model, prompt, new_tokens, **kwargs):
    eos = model.config.eos_token_id
    out = model.generate(torch.tensor([prompt]), max_new_tokens=new_tokens, do_sample=False,
                         output_logits=True, return_dict_in_generate=True, eos_token_id=eos,
                         pad_token_id=eos, **kwargs)
    generated = out.sequences[0, len(prompt):].tolist()
    logits = torch.stack([l[0] for l in out.logits]).float()
    return generated, logits


def tiny():
    for name, (lengths, new) in TINY.items():
        model = load(os.path.join(HERE, "engine", name))
        rng = np.random.default_rng(100 + len(name))
        prompts = [rng.integers(0, model.config.vocab_size, size=n).tolist() for n in lengths]
        record, tensors = {"model": f"Tests/Fixtures/engine/{name}", "max_new_tokens": new, "sequences": []}, {}
        for i, prompt in enumerate(prompts):
            generated, logits = hf_greedy(model, prompt, new)
            record["sequences"].append({"prompt": prompt, "tokens": generated})
            tensors[f"p{i}.logits"] = logits.contiguous()
        write(name, record, tensors)


def pythia_mini():
    row = read_bin_rows(os.path.join(SHARED, "data/minipile/document"), [1])[0]
    prompts = [row[100:100 + n] for n in PYTHIA_PROMPTS]
    for step in STEPS:
        model = load(os.path.join(SHARED, "models/pythia-mini", step))
        record = {"model": f"pythia-mini/{step}", "max_new_tokens": PYTHIA_NEW, "logit_stride": LOGIT_STRIDE, "sequences": []}
        tensors = {}
        for i, prompt in enumerate(prompts):
            generated, logits = hf_greedy(model, prompt, PYTHIA_NEW)
            record["sequences"].append({"prompt": prompt, "tokens": generated})
            tensors[f"p{i}.logits"] = logits[:, ::LOGIT_STRIDE].contiguous()
            tensors[f"p{i}.chosen"] = logits.gather(1, torch.tensor(generated).unsqueeze(1)).squeeze(1).contiguous()
        write(f"pythia-mini-{step}", record, tensors)


@torch.no_grad()
def memorization():
    start, end = MEMO_ROWS
    rows = read_bin_rows(os.path.join(SHARED, "data/minipile/document"), range(start, end))
    context = torch.tensor([r[:32] for r in rows])
    truth = torch.tensor([r[32:64] for r in rows])
    result = {"rows": [start, end], "prefix": 32, "continuation": 32, "steps": {}}
    for step in STEPS:
        model = load(os.path.join(SHARED, "models/pythia-mini", step))
        generations = model.generate(context, temperature=0.0, top_k=0, top_p=0, max_length=64, min_length=64,
                                     pad_token_id=0)
        scores = (truth == generations[:, 32:64]).float().mean(axis=-1)
        result["steps"][step] = {"scores": scores.tolist(), "generated": generations[:, 32:64].tolist()}
        print(step, "mean memorization", float(scores.mean()))
    with open(os.path.join(OUT, "memorization.json"), "w") as f:
        json.dump(result, f, separators=(",", ":"))


@torch.no_grad()
def greedy_scored(model, prefix, count):
    """`count` greedy tokens after `prefix` (no EOS stop: exactly `count`, EOS may be chosen) and
    the log-probability (log_softmax of the raw logits, fp32) the model gives each."""
    out = model.generate(torch.tensor([prefix]), max_new_tokens=count, min_new_tokens=0, do_sample=False,
                         output_logits=True, return_dict_in_generate=True, eos_token_id=None, pad_token_id=0)
    tokens = out.sequences[0, len(prefix):].tolist()
    logprobs = [float(F.log_softmax(l[0].float(), dim=-1)[t]) for l, t in zip(out.logits, tokens)]
    return tokens, logprobs


def lambada_generation():
    """Per example (context c, target t as the harness encodes them; sentence s = c + t, n = |s|):
    (a) g = greedy |t| tokens after c; exact = (g == t); logprobs of g.
    (b) for k = 1..K: m = max(1, floor(k·n/(K+1))); g_k = greedy n − m tokens after s[:m];
        matches = Σ_i (g_k[i] == s[m + i]); logprobs of g_k.
    Aggregates per step: generation_acc = mean(exact), generation_perplexity =
    exp(−Σ logprobs / Σ tokens) over all examples' generated tokens; per k: unmask_agreement_k =
    Σ matches / Σ (n − m), unmask_perplexity_k = exp(−Σ logprobs / Σ (n − m))."""
    tok = load_tokenizer(os.path.join(SHARED, "tokenizer/20B_tokenizer.json"))
    with open(os.path.join(SHARED, "data/lambada/lambada_test.jsonl")) as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()][:LAMBADA_COUNT]
    requests = [encode_request(tok, *lambada_split(t)) for t in texts]
    result = {"count": LAMBADA_COUNT, "K": UNMASK_K, "steps": {}}
    for step in ["step0", "step256", "step2000"]:
        model = load(os.path.join(SHARED, "models/pythia-mini", step))
        exact, lp_sum, lp_count = [], 0.0, 0
        unmask = {k: [0, 0.0, 0] for k in range(1, UNMASK_K + 1)}
        for context, target in requests:
            g, lps = greedy_scored(model, context, len(target))
            exact.append(g == target)
            lp_sum += sum(lps); lp_count += len(lps)
            sentence = context + target
            n = len(sentence)
            for k in range(1, UNMASK_K + 1):
                m = max(1, (k * n) // (UNMASK_K + 1))
                gk, lpk = greedy_scored(model, sentence[:m], n - m)
                unmask[k][0] += sum(int(a == b) for a, b in zip(gk, sentence[m:]))
                unmask[k][1] += sum(lpk); unmask[k][2] += n - m
        entry = {"generation_acc": sum(exact) / len(exact), "generation_perplexity": math.exp(-lp_sum / lp_count)}
        for k, (matches, lps, count) in unmask.items():
            entry[f"unmask_agreement_k{k}"] = matches / count
            entry[f"unmask_perplexity_k{k}"] = math.exp(-lps / count)
        result["steps"][step] = entry
        print(step, entry)
    with open(os.path.join(OUT, "lambada_generation.json"), "w") as f:
        json.dump(result, f, indent=1)


def write(name, record, tensors):
    record.update({"generator": "Tests/Fixtures/generate_generation.py", "transformers": __import__("transformers").__version__,
                   "torch": torch.__version__})
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(record, f, separators=(",", ":"))
    save_file(tensors, os.path.join(OUT, name + ".safetensors"))
    print("wrote", name)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    parts = sys.argv[1:] or ["tiny", "pythia", "memorization", "lambada"]
    if "tiny" in parts: tiny()
    if "pythia" in parts: pythia_mini()
    if "memorization" in parts: memorization()
    if "lambada" in parts: lambada_generation()
