#!/usr/bin/env python3
"""Reference gradients for NeoXModel.backward (run with ../venv/bin/python from the repo root).

The reference is PyTorch autograd on the HF GPTNeoXForCausalLM in float64, with the two places HF
would drop to float32 in a float64 model patched: the attention softmax (HF casts it to fp32) and
the rotary angles (HF forms them in fp32); the loss is our own float64 cross-entropy (HF's loss
casts logits to fp32). Loss: mean next-token cross-entropy, HF convention (labels = input_ids,
positions 0..T-2 predict 1..T-1).

1. The five engine fixture configs (Tests/Fixtures/engine/*, the four models plus the erf model
   run with tanh-GELU): `grad/<name>.safetensors` holds every parameter gradient (HF names; a tied
   model has only gpt_neox.embed_in.weight) and every activation gradient (TransformerLens names +
   `_grad`, [B, T, d]); `grad/<name>.json` the loss (float64), token count and the loss restricted
   to a few target positions.
2. every pythia-mini step (../shared) on the first 64 tokens of mini-Pile row 0:
   `grad/pythia-mini-stepN.safetensors` with every block parameter gradient in full, embed_out's
   gradient every 128th row, embed_in's only at the rows the tokens touch (listed in the .json), and
   the residual-stream gradients (in a parallel-residual block attn_out and mlp_out have exactly
   resid_post's gradient).
"""
import json, os
import numpy as np
import torch
import transformers.models.gpt_neox.modeling_gpt_neox as hf
from transformers import GPTNeoXForCausalLM
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.abspath(__file__))
ENGINE = os.path.join(ROOT, "engine")
OUT = os.path.join(ROOT, "grad")
SHARED = os.path.normpath(os.path.join(ROOT, "..", "..", "..", "shared"))


def eager64(module, query, key, value, attention_mask, scaling, dropout=0.0, head_mask=None, **kwargs):
    """HF's eager attention with the softmax kept in the model's dtype (float64)."""
    w = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        w = w + attention_mask[:, :, :, : key.shape[-2]]
    w = torch.softmax(w, dim=-1)
    return torch.matmul(w, value).transpose(1, 2).contiguous(), w


def rotary64(self, x, position_ids):
    """HF's rotary cos/sin with angles formed in float64 from the (fp32) inv_freq buffer."""
    freqs = (self.inv_freq.double()[None, :, None] @ position_ids[:, None, :].double()).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(x.dtype), emb.sin().to(x.dtype)


hf.eager_attention_forward = eager64
hf.GPTNeoXRotaryEmbedding.forward = torch.no_grad()(rotary64)


def loss64(logits, tokens, positions=None):
    """Mean cross-entropy of logits[:, t] against tokens[:, t+1] (targets at `positions` only if given)."""
    lp = torch.log_softmax(logits[:, :-1].double(), dim=-1)
    target = tokens[:, 1:]
    nll = -lp.gather(-1, target[..., None])[..., 0]
    if positions is not None:
        mask = torch.zeros_like(nll, dtype=torch.bool)
        mask[:, [p - 1 for p in positions]] = True
        nll = nll[mask]
    return nll.mean(), nll.numel()


def gradients(model, tokens, sites=("hook_resid_pre", "hook_attn_out", "hook_mlp_out", "hook_resid_post", "hook_resid_mid")):
    """Loss, parameter gradients and activation gradients of one float64 backward pass."""
    acts, handles = {}, []
    cfg = model.config
    def keep(name, t):
        t.retain_grad(); acts[name] = t
    for L, layer in enumerate(model.gpt_neox.layers):
        def pre(mod, args, kwargs, L=L):
            keep(f"blocks.{L}.hook_resid_pre", args[0] if args else kwargs["hidden_states"])
        def post(mod, args, out, L=L):
            keep(f"blocks.{L}.hook_resid_post", out[0])
        def attn(mod, args, out, L=L):
            keep(f"blocks.{L}.hook_attn_out", out[0])
        def mlp(mod, args, out, L=L):
            keep(f"blocks.{L}.hook_mlp_out", out)
        def ln2(mod, args, L=L):   # sequential: post_attention_layernorm reads resid_mid
            keep(f"blocks.{L}.hook_resid_mid", args[0])
        handles += [layer.register_forward_pre_hook(pre, with_kwargs=True), layer.register_forward_hook(post),
                    layer.attention.register_forward_hook(attn), layer.mlp.register_forward_hook(mlp)]
        if not cfg.use_parallel_residual:
            handles.append(layer.post_attention_layernorm.register_forward_pre_hook(ln2))
    ids = torch.tensor(tokens, dtype=torch.long)
    model.zero_grad(set_to_none=True)
    logits = model(ids, use_cache=False).logits
    loss, count = loss64(logits, ids)
    loss.backward()
    for h in handles:
        h.remove()
    params = {n: p.grad.float().contiguous() for n, p in model.named_parameters()}
    grads = {f"{k}_grad": v.grad.float().contiguous() for k, v in acts.items() if k.split(".")[-1] in sites}
    with torch.no_grad():
        restricted = float(loss64(logits, ids, positions=[1, 3, len(tokens[0]) - 1])[0])
    return float(loss), count, params, grads, restricted


def load64(directory, act=None):
    model = GPTNeoXForCausalLM.from_pretrained(directory, torch_dtype=torch.float64, attn_implementation="eager").eval()
    if act is not None:
        from transformers.activations import ACT2FN
        for layer in model.gpt_neox.layers:
            layer.mlp.act = ACT2FN[act]
    return model


def tokens_of(path):
    with open(path) as f:
        return [[int(x) for x in line.split()] for line in f if line.strip()]


def tiny():
    cases = [("parallel_erf_r025", None), ("sequential_tanh_r100", None), ("parallel_tanh_nobias_tied", None),
             ("sequential_relu_r025", None), ("parallel_erf_r025", "gelu_new")]
    for name, act in cases:
        d = os.path.join(ENGINE, name)
        tokens = tokens_of(os.path.join(d, "tokens.txt"))
        loss, count, params, grads, restricted = gradients(load64(d, act), tokens)
        out = name + ("_tanh" if act else "")
        save_file({**params, **grads}, os.path.join(OUT, out + ".safetensors"))
        with open(os.path.join(OUT, out + ".json"), "w") as f:
            json.dump(dict(loss=loss, token_count=count, restricted_positions=[1, 3, len(tokens[0]) - 1],
                           restricted_loss=restricted), f, indent=1)
        print("wrote", out, loss)


def pythia_mini(steps=("step0", "step4", "step16", "step64", "step256", "step512", "step1000", "step2000"), length=64, stride=128):
    with open(os.path.join(ENGINE, "pythia-mini", "row0_tokens.txt")) as f:
        tokens = [[int(x) for x in f.read().split()][:length]]
    for step in steps:
        path = os.path.join(SHARED, "models", "pythia-mini", step)
        loss, count, params, grads, _ = gradients(load64(path), tokens, sites=("hook_resid_pre", "hook_resid_post"))
        rows = sorted(set(tokens[0]))
        params["gpt_neox.embed_in.weight"] = params["gpt_neox.embed_in.weight"][rows].contiguous()
        params["embed_out.weight"] = params["embed_out.weight"][::stride].contiguous()
        save_file({**params, **grads}, os.path.join(OUT, f"pythia-mini-{step}.safetensors"))
        with open(os.path.join(OUT, f"pythia-mini-{step}.json"), "w") as f:
            json.dump(dict(loss=loss, token_count=count, length=length, embed_in_rows=rows, embed_out_row_stride=stride), f)
        print("wrote", step, loss)


if __name__ == "__main__":
    torch.set_num_threads(2)
    os.makedirs(OUT, exist_ok=True)
    tiny()
    pythia_mini()
