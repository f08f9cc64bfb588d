#!/usr/bin/env python3
"""Reference numbers for the evaluation code (Tests/Fixtures/eval/*.json), computed with HF
transformers (GPTNeoXForCausalLM, fp32, eager attention) following lm-evaluation-harness 0.4.5's
formulas for `lambada_openai` + HFLM, and Hugging Face's strided-perplexity recipe.

Usage (from the repo root, with the reference venv):
    ../venv/bin/python Tests/Fixtures/generate_eval.py [--shared ../shared] [--limit 300]
                                                       [--lm-eval 200] [--skip-lm-eval]

LAMBADA (lm_eval/api/model.py `loglikelihood` + `_encode_pair`, models/huggingface.py
`_loglikelihood_tokens`, api/metrics.py):
  context = ' '.join(text.split(' ')[:-1]), continuation = ' ' + text.split(' ')[-1]
  empty context            -> context_enc = [EOT], continuation_enc = encode(continuation)
  otherwise (_encode_pair) -> trailing whitespace of the context moves to the continuation;
                              whole = encode(context + continuation), context_enc = encode(context),
                              continuation_enc = whole[len(context_enc):]
  input = (context_enc + continuation_enc)[-(max_length + 1):][:-1]   (max_length = 2048)
  the last len(continuation_enc) positions of log_softmax(logits) (fp32) score the continuation:
  ll = sum of their target log-probs, greedy = every argmax equals its target.
  acc = mean(greedy), perplexity = exp(-mean(ll)).
It also runs lm_eval itself (CLI, offline, local task yaml) on the first --lm-eval examples of
step2000 and checks its acc/perplexity equal this script's, then records lm_eval's numbers.

Perplexity (per document, HF strided convention): windows [begin, min(begin + T, n)) for
begin = 0, S, 2S, ...; window k scores the tokens t with max(prev_end, begin + 1) <= t < end
(prev_end = the previous window's end), i.e. each token with index >= 1 at most once, with the
context the window allows. Log-softmax in float64 of the fp32 logits. Packed mode: documents each
followed by EOD (id 0), concatenated into one stream, same windows. `.bin` rows: Pythia convention,
input = row[:-1], targets = row[1:].
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "eval")
STEPS = ["step0", "step4", "step16", "step64", "step256", "step512", "step1000", "step2000"]
EOT = 0
MAX_LENGTH = 2048


def load_model(path):
    from transformers import GPTNeoXForCausalLM
    model = GPTNeoXForCausalLM.from_pretrained(path, torch_dtype=torch.float32, attn_implementation="eager")
    model.eval()
    return model


def load_tokenizer(path):
    from transformers import PreTrainedTokenizerFast
    return PreTrainedTokenizerFast(tokenizer_file=path)


def encode(tok, text):
    return tok.encode(text, add_special_tokens=False)


# ---------------------------------------------------------------- LAMBADA

def lambada_split(text):
    words = text.split(' ')
    return ' '.join(words[:-1]), ' ' + words[-1]


def encode_request(tok, context, continuation):
    """lm_eval TemplateLM.loglikelihood + _encode_pair for a causal LM."""
    if context == "":
        return [EOT], encode(tok, continuation)
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces > 0:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = encode(tok, context + continuation)
    context_enc = encode(tok, context)
    return context_enc, whole[len(context_enc):]


@torch.no_grad()
def score_request(model, context_enc, continuation_enc):
    """HFLM._loglikelihood_tokens for one request (logits only where the continuation is scored;
    the rows are the same fp32 numbers a full pass gives)."""
    inp = (context_enc + continuation_enc)[-(MAX_LENGTH + 1):][:-1]
    n = len(continuation_enc)
    hidden = model.gpt_neox(torch.tensor([inp])).last_hidden_state[0]
    logits = model.embed_out(hidden[len(inp) - n:])
    logprobs = F.log_softmax(logits, dim=-1)               # fp32, as lm_eval
    cont = torch.tensor(continuation_enc)
    greedy = bool((logprobs.argmax(dim=-1) == cont).all())
    ll = float(torch.gather(logprobs, 1, cont.unsqueeze(-1)).squeeze(-1).sum())
    return ll, greedy, len(inp)


def lambada(shared, tok, limit):
    with open(os.path.join(shared, "data/lambada/lambada_test.jsonl")) as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()][:limit]
    requests = [encode_request(tok, *lambada_split(t)) for t in texts]
    steps = {}
    for step in STEPS:
        model = load_model(os.path.join(shared, "models/pythia-mini", step))
        lls, greedys = [], []
        for context_enc, continuation_enc in requests:
            ll, greedy, _ = score_request(model, context_enc, continuation_enc)
            lls.append(ll)
            greedys.append(greedy)
        aggregates = {}
        for n in sorted({100, 200, limit}):
            if n <= len(lls):
                aggregates[str(n)] = {"acc": sum(greedys[:n]) / n,
                                      "perplexity": math.exp(-sum(lls[:n]) / n)}
        steps[step] = {"ll": [round(x, 9) for x in lls], "greedy": [int(g) for g in greedys],
                       "aggregates": aggregates}
        print(f"  lambada {step}: {aggregates}", flush=True)
    encodings = [{"index": i, "context_length": len(c), "continuation": e}
                 for i, (c, e) in enumerate(requests[:40])]
    return {"limit": limit, "max_length": MAX_LENGTH, "steps": steps, "encodings": encodings}


def run_lm_eval(shared, venv, model_dir, limit):
    """lm_eval's own numbers on the first `limit` examples (offline, local copy of the task)."""
    work = tempfile.mkdtemp(prefix="eval-lm-eval-")
    tokdir = os.path.join(work, "tok")
    os.makedirs(tokdir)
    shutil.copy(os.path.join(shared, "tokenizer/20B_tokenizer.json"), os.path.join(tokdir, "tokenizer.json"))
    with open(os.path.join(tokdir, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "GPTNeoXTokenizerFast", "bos_token": "<|endoftext|>",
                   "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "add_prefix_space": False}, f)
    taskdir = os.path.join(work, "tasks")
    os.makedirs(taskdir)
    data = os.path.abspath(os.path.join(shared, "data/lambada/lambada_test.jsonl"))
    with open(os.path.join(taskdir, "lambada_openai_local.yaml"), "w") as f:
        f.write(open(LAMBADA_YAML_TEMPLATE).read().replace("@DATA@", data))
    outdir = os.path.join(work, "out")
    env = dict(os.environ, HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    subprocess.run([os.path.join(venv, "bin/lm_eval"), "--model", "hf", "--model_args",
                    f"pretrained={model_dir},tokenizer={tokdir},dtype=float32",
                    "--tasks", "lambada_openai_local", "--include_path", taskdir, "--device", "cpu",
                    "--batch_size", "16", "--limit", str(limit), "--output_path", outdir],
                   check=True, env=env)
    results = None
    for dirpath, _, files in os.walk(outdir):
        for name in files:
            if name.startswith("results") and name.endswith(".json"):
                with open(os.path.join(dirpath, name)) as f:
                    results = json.load(f)["results"]["lambada_openai_local"]
    shutil.rmtree(work, ignore_errors=True)
    return {"acc": results["acc,none"], "perplexity": results["perplexity,none"]}


# The harness task, shared with bench/lambada/run.sh so both run the very same task definition.
LAMBADA_YAML_TEMPLATE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                     "bench", "lambada", "lambada_openai_local.yaml.in")


@torch.no_grad()
def greedy(shared, tok, count=50, steps=("step64", "step512", "step2000")):
    """Greedy-decoded continuations: for each of the first `count` examples, as many tokens as the
    real target has, each the argmax after the context and the previous greedy tokens. Scored with
    the harness's formula they must be greedy (acc 1) in any faithful implementation, which real
    LAMBADA targets (acc 0 for this small code model) cannot show."""
    with open(os.path.join(shared, "data/lambada/lambada_test.jsonl")) as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()][:count]
    requests = [encode_request(tok, *lambada_split(t)) for t in texts]
    result = {}
    for step in steps:
        model = load_model(os.path.join(shared, "models/pythia-mini", step))
        items = []
        for context_enc, continuation_enc in requests:
            tokens = []
            for _ in continuation_enc:
                logits = model(torch.tensor([(context_enc + tokens)[-MAX_LENGTH:]])).logits[0, -1]
                tokens.append(int(logits.argmax()))
            ll, is_greedy, _ = score_request(model, context_enc, tokens)
            assert is_greedy
            items.append({"continuation": tokens, "ll": ll})
        result[step] = items
        print(f"  greedy {step}: {len(items)} continuations", flush=True)
    return {"count": count, "steps": result}


# ---------------------------------------------------------------- perplexity

@torch.no_grad()
def strided_nll(model, ids, window, stride):
    """HF's strided perplexity, exact token sums: returns (sum of NLL, scored token count)."""
    total, count, prev_end = 0.0, 0, 0
    for begin in range(0, len(ids), stride):
        end = min(begin + window, len(ids))
        logits = model(torch.tensor([ids[begin:end]])).logits[0].double()
        logprobs = F.log_softmax(logits, dim=-1)
        for t in range(max(prev_end, begin + 1), end):
            total -= float(logprobs[t - begin - 1, ids[t]])
            count += 1
        prev_end = end
        if end == len(ids):
            break
    return total, count


@torch.no_grad()
def row_nll(model, row):
    logits = model(torch.tensor([row[:-1]])).logits[0].double()
    logprobs = F.log_softmax(logits, dim=-1)
    targets = torch.tensor(row[1:])
    return -float(torch.gather(logprobs, 1, targets.unsqueeze(-1)).sum()), len(row) - 1


def read_val_documents(shared):
    import zstandard
    with open(os.path.join(shared, "data/minipile/val.jsonl.zst"), "rb") as f:
        data = zstandard.ZstdDecompressor().stream_reader(f).read()
    return [json.loads(line)["text"] for line in data.decode("utf-8").splitlines() if line.strip()]


def read_bin_rows(prefix, rows):
    with open(prefix + ".idx", "rb") as f:
        header = f.read(9 + 8 + 1 + 8 + 8)
        assert header[:9] == b"MMIDIDX\x00\x00"
        dtype = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64,
                 6: np.float32, 7: np.float64, 8: np.uint16}[header[17]]
        count = int.from_bytes(header[18:26], "little")
        sizes = np.frombuffer(f.read(4 * count), dtype=np.int32)
        pointers = np.frombuffer(f.read(8 * count), dtype=np.int64)
    data = np.memmap(prefix + ".bin", dtype=np.uint8, mode="r")
    width = np.dtype(dtype).itemsize
    return [np.frombuffer(data[pointers[r]:pointers[r] + sizes[r] * width].tobytes(), dtype=dtype)
            .astype(np.int64).tolist() for r in rows]


def summary(total, count):
    return {"nll_sum": total, "tokens": count, "nll": total / count, "perplexity": math.exp(total / count)}


def perplexity(shared, tok):
    docs = read_val_documents(shared)
    cases = []
    per_doc = {"documents": [1, 3], "window": 128, "stride": 64}
    packed = {"documents": [1, 5], "window": 256, "stride": 192}
    bin_rows = [0, 1]
    rows = read_bin_rows(os.path.join(shared, "data/minipile/document"), bin_rows)
    for step in ["step256", "step2000"]:
        model = load_model(os.path.join(shared, "models/pythia-mini", step))
        # per document
        per, total, count = [], 0.0, 0
        for i in range(*per_doc["documents"]):
            s, c = strided_nll(model, encode(tok, docs[i]), per_doc["window"], per_doc["stride"])
            per.append({"index": i, **summary(s, c)})
            total += s
            count += c
        cases.append({"step": step, "mode": "per-document", "data": "val.jsonl.zst", **per_doc,
                      **summary(total, count), "per_document": per})
        # packed
        stream = []
        for i in range(*packed["documents"]):
            ids = encode(tok, docs[i])
            if ids:
                stream += ids + [EOT]
        s, c = strided_nll(model, stream, packed["window"], packed["stride"])
        cases.append({"step": step, "mode": "packed", "data": "val.jsonl.zst", **packed, **summary(s, c)})
        # .bin rows
        total, count = 0.0, 0
        for row in rows:
            s, c = row_nll(model, row)
            total += s
            count += c
        cases.append({"step": step, "mode": "rows", "data": "document", "rows": [bin_rows[0], bin_rows[-1] + 1],
                      **summary(total, count)})
        print(f"  perplexity {step}: " + ", ".join(f"{c['mode']} {c['perplexity']:.4f}" for c in cases[-3:]),
              flush=True)
    return {"cases": cases}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    parser.add_argument("--venv", default=os.environ.get("VENV", os.path.join(ROOT, "..", "venv")))
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--lm-eval", type=int, default=200)
    parser.add_argument("--skip-lm-eval", action="store_true")
    parser.add_argument("--only", choices=["lambada", "greedy", "perplexity"])
    args = parser.parse_args()
    torch.set_num_threads(2)
    shared = os.path.abspath(args.shared)
    os.makedirs(OUT, exist_ok=True)
    tok = load_tokenizer(os.path.join(shared, "tokenizer/20B_tokenizer.json"))
    meta = {"transformers": __import__("transformers").__version__, "torch": torch.__version__,
            "generator": "Tests/Fixtures/generate_eval.py"}

    if args.only in (None, "lambada"):
        result = lambada(shared, tok, args.limit)
        if not args.skip_lm_eval:
            n = args.lm_eval
            harness = run_lm_eval(shared, args.venv, os.path.join(shared, "models/pythia-mini/step2000"), n)
            ours = result["steps"]["step2000"]["aggregates"][str(n)]
            print(f"  lm_eval step2000 first {n}: {harness}; this script: {ours}", flush=True)
            assert harness["acc"] == ours["acc"], (harness, ours)
            assert abs(harness["perplexity"] / ours["perplexity"] - 1) < 1e-5, (harness, ours)
            import lm_eval
            result["lm_eval"] = {"version": lm_eval.__version__ if hasattr(lm_eval, "__version__") else "0.4.5",
                                 "step": "step2000", "limit": n, **harness}
        with open(os.path.join(OUT, "lambada.json"), "w") as f:
            json.dump({**meta, **result}, f, separators=(",", ":"))
            f.write("\n")
    if args.only in (None, "greedy"):
        with open(os.path.join(OUT, "greedy.json"), "w") as f:
            json.dump({**meta, **greedy(shared, tok)}, f, separators=(",", ":"))
            f.write("\n")
    if args.only in (None, "perplexity"):
        result = perplexity(shared, tok)
        with open(os.path.join(OUT, "perplexity.json"), "w") as f:
            json.dump({**meta, **result}, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    sys.exit(main())
