#!/usr/bin/env python3
"""Reference fixtures for the NeoX forward engine (run with ../venv/bin/python from the repo root).

1. Tiny random-weight GPTNeoXForCausalLM models covering the architecture's switches (parallel /
   sequential residual, rotary_pct 0.25 / 0.5 / 1.0, erf / tanh GELU / relu, head_dim not a power of
   two, attention_bias false, tied embeddings, B > 1), each saved as a model directory
   (config.json + model.safetensors, fp32) with `tokens.txt` (one sequence per line) and
   `reference.safetensors` holding every TransformerLens hook ([B, T, d]) and `logits` ([B, T, V]),
   computed by HF transformers (eager attention, fp32) with forward hooks on its submodules.
2. Per-hook float64 summary statistics of every pythia-mini checkpoint in ../shared on the first
   2048 tokens of row 0 of the mini-Pile (`pythia-mini/stepN.json`), plus those tokens.
3. `--bench DIR`: a random-weight pythia-160m-shaped model for bench/engine (not committed).
"""
import json, os, sys
import numpy as np
import torch
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(ROOT, "engine")
SHARED = os.path.normpath(os.path.join(ROOT, "..", "..", "..", "shared"))
torch.set_num_threads(2)

TINY = {
    # name: (config overrides, batch, length, seed)
    "parallel_erf_r025": (dict(hidden_size=48, num_attention_heads=2, num_hidden_layers=3, intermediate_size=192,
                               vocab_size=300, rotary_pct=0.25, use_parallel_residual=True, hidden_act="gelu",
                               max_position_embeddings=64), 2, 17, 1),
    "sequential_tanh_r100": (dict(hidden_size=48, num_attention_heads=4, num_hidden_layers=2, intermediate_size=96,
                                  vocab_size=200, rotary_pct=1.0, use_parallel_residual=False, hidden_act="gelu_new",
                                  max_position_embeddings=32), 3, 9, 2),
    "parallel_tanh_nobias_tied": (dict(hidden_size=40, num_attention_heads=5, num_hidden_layers=2, intermediate_size=160,
                                       vocab_size=150, rotary_pct=0.5, use_parallel_residual=True, hidden_act="gelu_new",
                                       attention_bias=False, tie_word_embeddings=True, max_position_embeddings=33,
                                       rotary_emb_base=500), 1, 33, 3),
    "sequential_relu_r025": (dict(hidden_size=64, num_attention_heads=4, num_hidden_layers=2, intermediate_size=128,
                                  vocab_size=256, rotary_pct=0.25, use_parallel_residual=False, hidden_act="relu",
                                  layer_norm_eps=1e-6, max_position_embeddings=16), 2, 7, 4),
}


def randomize(model, seed):
    """Weights of O(1/sqrt(fan_in)) so every path (sharp attention, large residuals) is exercised."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layernorm" in name or "layer_norm" in name:
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
            elif "embed" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) * (1.5 / p.shape[1] ** 0.5))


def capture(model, tokens):
    """Every TransformerLens hook of an HF GPT-NeoX forward, via module hooks."""
    acts, handles = {}, []
    cfg = model.config
    for L, layer in enumerate(model.gpt_neox.layers):
        def pre(mod, args, kwargs, L=L):
            x = args[0] if args else kwargs["hidden_states"]
            acts[f"blocks.{L}.hook_resid_pre"] = x.detach().clone()
        def post(mod, args, out, L=L):
            acts[f"blocks.{L}.hook_resid_post"] = out[0].detach().clone()
        def attn(mod, args, out, L=L):
            acts[f"blocks.{L}.hook_attn_out"] = out[0].detach().clone()
        def mlp(mod, args, out, L=L):
            acts[f"blocks.{L}.hook_mlp_out"] = out.detach().clone()
        handles += [layer.register_forward_pre_hook(pre, with_kwargs=True), layer.register_forward_hook(post),
                    layer.attention.register_forward_hook(attn), layer.mlp.register_forward_hook(mlp)]
    def final_norm(mod, args, out):
        # TransformerLens 3.x: hook_normalized = (x - mean) / scale, before the weight and bias.
        x = args[0].detach()
        centered = x - x.mean(-1, keepdim=True)
        acts["ln_final.hook_normalized"] = centered / (centered.pow(2).mean(-1, keepdim=True) + mod.eps).sqrt()
    handles.append(model.gpt_neox.final_layer_norm.register_forward_hook(final_norm))
    with torch.no_grad():
        out = model(torch.tensor(tokens, dtype=torch.long), use_cache=False)
    for h in handles:
        h.remove()
    if not cfg.use_parallel_residual:
        for L in range(cfg.num_hidden_layers):
            # HF: attn_output = attn_output + hidden_states (same operand order, so bit-identical).
            acts[f"blocks.{L}.hook_resid_mid"] = acts[f"blocks.{L}.hook_attn_out"] + acts[f"blocks.{L}.hook_resid_pre"]
    acts["logits"] = out.logits.detach().clone()
    return {k: v.float().contiguous() for k, v in acts.items()}


def tiny():
    for name, (overrides, B, T, seed) in TINY.items():
        cfg = GPTNeoXConfig(**overrides)
        cfg._attn_implementation = "eager"
        torch.manual_seed(seed)
        model = GPTNeoXForCausalLM(cfg).float().eval()
        randomize(model, seed)
        if cfg.tie_word_embeddings:
            model.tie_weights()
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        model.save_pretrained(d, safe_serialization=True)
        model = GPTNeoXForCausalLM.from_pretrained(d, torch_dtype=torch.float32, attn_implementation="eager").eval()
        rng = np.random.default_rng(seed)
        tokens = rng.integers(0, cfg.vocab_size, size=(B, T)).tolist()
        with open(os.path.join(d, "tokens.txt"), "w") as f:
            f.write("".join(" ".join(map(str, row)) + "\n" for row in tokens))
        save_file(capture(model, tokens), os.path.join(d, "reference.safetensors"))
        if name == "parallel_erf_r025":
            # Same weights with the tanh approximation: reference for the activation override.
            model.config.hidden_act = "gelu_new"
            from transformers.activations import ACT2FN
            for layer in model.gpt_neox.layers:
                layer.mlp.act = ACT2FN["gelu_new"]
            save_file(capture(model, tokens), os.path.join(d, "reference_tanh.safetensors"))
        print("wrote", d)


def minipile_row(index, length=2048):
    base = os.path.join(SHARED, "data", "minipile", "document")
    with open(base + ".idx", "rb") as f:
        raw = f.read()
    assert raw[:9] == b"MMIDIDX\x00\x00"
    version, = np.frombuffer(raw, np.uint64, 1, 9)
    code = raw[17]
    count, doc_count = np.frombuffer(raw, np.uint64, 2, 18)
    sizes = np.frombuffer(raw, np.int32, int(count), 34)
    pointers = np.frombuffer(raw, np.int64, int(count), 34 + 4 * int(count))
    assert version == 1 and code == 8  # uint16
    tokens = np.memmap(base + ".bin", dtype=np.uint16, mode="r", offset=int(pointers[index]), shape=(int(sizes[index]),))
    return [int(t) for t in tokens[:length]]


def stats(t, samples=300):
    """Float64 sums plus a strided sample: flat indices start + i*stride, i < len(values)."""
    x = t.double().flatten()
    n = x.numel()
    stride = max(1, n // samples)
    start = stride // 2
    idx = torch.arange(start, n, stride)[:samples]
    return dict(shape=list(t.shape), count=n, sum=float(x.sum()), sumabs=float(x.abs().sum()),
                sumsq=float((x * x).sum()), maxabs=float(x.abs().max()),
                start=start, stride=stride, values=[float(f"{float(v):.9g}") for v in x[idx]])


def pythia_mini():
    models = os.path.join(SHARED, "models", "pythia-mini")
    if not os.path.isdir(models):
        print("no", models, "- skipping pythia-mini statistics")
        return
    d = os.path.join(OUT, "pythia-mini")
    os.makedirs(d, exist_ok=True)
    tokens = minipile_row(0)
    with open(os.path.join(d, "row0_tokens.txt"), "w") as f:
        f.write(" ".join(map(str, tokens)) + "\n")
    for step in sorted(os.listdir(models)):
        path = os.path.join(models, step)
        if not step.startswith("step"):
            continue
        model = GPTNeoXForCausalLM.from_pretrained(path, torch_dtype=torch.float32, attn_implementation="eager").eval()
        acts = capture(model, [tokens])
        with open(os.path.join(d, f"{step}.json"), "w") as f:
            json.dump({k: stats(v) for k, v in sorted(acts.items())}, f, separators=(",", ":"))
        print("wrote", step)


def bench(directory):
    cfg = GPTNeoXConfig(vocab_size=50304, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                        intermediate_size=3072, rotary_pct=0.25, max_position_embeddings=2048,
                        use_parallel_residual=True, hidden_act="gelu", tie_word_embeddings=False)
    torch.manual_seed(0)
    model = GPTNeoXForCausalLM(cfg).float().eval()
    model.save_pretrained(directory, safe_serialization=True)
    print("wrote", directory)


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--bench":
        bench(sys.argv[2])
    elif len(sys.argv) >= 2 and sys.argv[1] in ("--tiny", "--pythia-mini"):
        tiny() if sys.argv[1] == "--tiny" else pythia_mini()
    else:
        tiny()
        pythia_mini()
