#!/usr/bin/env python3
"""Reference fixtures for TransformerLens's full hook vocabulary and for interventions
(run with ../venv/bin/python from the repo root; needs the `engine` area's tiny models).

1. `hooks/<tiny>/reference.safetensors`: every hook beyond the residual stream — hook_embed,
   ln1/ln2/ln_final hook_scale and hook_normalized, attn.hook_q/k/v/rot_q/rot_k/attn_scores/pattern/z/result,
   mlp.hook_pre/post — of each `engine` tiny model on its tokens, computed by HF GPTNeoXForCausalLM
   (fp32, eager) with PyTorch module hooks, the quantities TransformerLens defines re-implemented
   from HF's own tensors (q/k/v from `query_key_value`'s output, rotary by HF's
   `apply_rotary_pos_emb`, the pattern = HF's `output_attentions`, z = `dense`'s input, …).
2. `hooks/pythia-mini/stepN.json`: float64 summaries of the same hooks for every pythia-mini
   checkpoint on the first 48 tokens of mini-Pile rows 0 and 1 (B = 2).
3. `hooks/interventions/<model>.safetensors` + `.json`: logits of HF forward passes edited by
   PyTorch hooks doing what `neoxprobe run --ablate/--patch/--add` does (zero and mean ablation,
   patching from a second prompt's activations, adding vectors), and the clean logits.
4. `hooks/tl_hooks.json`: the hook names and shapes of a real TransformerLens HookedTransformer
   (pythia-mini step2000, weights unprocessed, `use_attn_result=True`), when transformer_lens is
   installed in the venv; then every HF-side reference of (2) is also checked against
   TransformerLens's own cache (values printed; TL 2.x's hook_normalized is after the affine).
"""
import importlib.metadata, json, os, sys
import numpy as np
import torch
import transformers.models.gpt_neox.modeling_gpt_neox as neox
from transformers import GPTNeoXForCausalLM
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, ROOT)
from generate_engine import TINY, minipile_row  # noqa: E402

OUT = os.path.join(ROOT, "hooks")
ENGINE = os.path.join(ROOT, "engine")
SHARED = os.path.normpath(os.path.join(ROOT, "..", "..", "..", "shared"))
torch.set_num_threads(2)


# ---------------------------------------------------------------- selections (the CLI's index syntax)

def parse_index(text):
    """'[:, :, 5]' -> (slice(None), slice(None), 5), as Python indexes."""
    body = text.strip()
    if body.startswith("["):
        body = body[1:-1]
    if not body.strip():
        return ()
    out = []
    for part in body.split(","):
        part = part.strip()
        if ":" in part:
            a, b = part.split(":")
            out.append(slice(int(a) if a else None, int(b) if b else None))
        else:
            out.append(int(part))
    return tuple(out)


def token_axes(name):
    return (0, 2) if name.endswith("attn_scores") or name.endswith("hook_pattern") else (0, 1)


def edit(name, act, spec, sources):
    """Applies one intervention spec to a TransformerLens-shaped activation; returns the edited copy."""
    a = act.clone()
    idx = parse_index(spec.get("index", ""))
    kind = spec["action"]
    if kind == "zero":
        a[idx] = 0
    elif kind == "mean":
        mean = act.double().mean(dim=token_axes(name), keepdim=True).float().expand_as(act)
        a[idx] = mean[idx]
    elif kind == "patch":
        a[idx] = sources[spec["source"]][idx]
    elif kind == "add":
        a[idx] = a[idx] + sources[spec["source"]]
    else:
        raise ValueError(kind)
    return a


# ---------------------------------------------------------------- HF forward with TransformerLens hooks

class Hooked:
    """An HF GPT-NeoX forward that records every TransformerLens hook (TL shapes) and applies
    edits at any of them: module hooks on HF's submodules plus HF's eager attention function
    replaced by the same arithmetic with the score/pattern hooks inside."""

    def __init__(self, model):
        self.model = model
        self.cfg = model.config
        self.acts = {}
        self.edits = {}     # hook name -> list of (spec, sources)

    def site(self, name, value):
        for spec, sources in self.edits.get(name, []):
            value = edit(name, value, spec, sources)
        self.acts[name] = value.detach().clone()
        return value

    def layer_norm(self, prefix):
        def hook(mod, args, out):
            x = args[0]
            centered = x - x.mean(-1, keepdim=True)
            scale = self.site(f"{prefix}.hook_scale", (centered.pow(2).mean(-1, keepdim=True) + mod.eps).sqrt())
            normalized = self.site(f"{prefix}.hook_normalized", centered / scale)
            if not any(k.startswith(prefix + ".") for k in self.edits):
                return out     # unedited: keep HF's own LayerNorm output
            return normalized * mod.weight + mod.bias
        return hook

    def run(self, tokens, edits=None):
        self.acts, self.edits = {}, {}
        for spec, sources in edits or []:
            self.edits.setdefault(spec["hook"], []).append((spec, sources))
        cfg, model = self.cfg, self.model
        H, dh = cfg.num_attention_heads, cfg.hidden_size // cfg.num_attention_heads
        handles = []
        gpt = model.gpt_neox
        handles.append(gpt.embed_in.register_forward_hook(lambda m, a, o: self.site("hook_embed", o)))
        for L, layer in enumerate(gpt.layers):
            p = f"blocks.{L}"
            def resid_pre(mod, args, kwargs, p=p):
                x = args[0] if args else kwargs["hidden_states"]
                x = self.site(f"{p}.hook_resid_pre", x)
                if args:
                    return (x,) + tuple(args[1:]), kwargs
                kwargs["hidden_states"] = x
                return args, kwargs
            handles.append(layer.register_forward_pre_hook(resid_pre, with_kwargs=True))
            handles.append(layer.input_layernorm.register_forward_hook(self.layer_norm(f"{p}.ln1")))
            handles.append(layer.post_attention_layernorm.register_forward_hook(self.layer_norm(f"{p}.ln2")))
            def qkv(mod, args, out, p=p):
                B, T, _ = out.shape
                view = out.view(B, T, H, 3 * dh)
                parts = [self.site(f"{p}.attn.hook_{n}", view[..., i * dh:(i + 1) * dh]) for i, n in enumerate("qkv")]
                return torch.cat([torch.cat(parts, dim=-1)], dim=-1).reshape(B, T, 3 * H * dh)
            handles.append(layer.attention.query_key_value.register_forward_hook(qkv))
            def dense_pre(mod, args, p=p):
                z = args[0]
                B, T, _ = z.shape
                z = self.site(f"{p}.attn.hook_z", z.view(B, T, H, dh)).reshape(B, T, H * dh)
                return (z,)
            handles.append(layer.attention.dense.register_forward_pre_hook(dense_pre))
            def dense(mod, args, out, p=p):
                z = args[0]
                B, T, _ = z.shape
                w = mod.weight.view(cfg.hidden_size, H, dh)                     # [d, H, dh]
                result = self.site(f"{p}.attn.hook_result", torch.einsum("bthk,dhk->bthd", z.view(B, T, H, dh), w))
                if f"{p}.attn.hook_result" not in self.edits:
                    return out
                return result.sum(2) + (mod.bias if mod.bias is not None else 0)
            handles.append(layer.attention.dense.register_forward_hook(dense))
            def attn_out(mod, args, out, p=p):
                return (self.site(f"{p}.hook_attn_out", out[0]),) + tuple(out[1:])
            handles.append(layer.attention.register_forward_hook(attn_out))
            handles.append(layer.mlp.dense_h_to_4h.register_forward_hook(lambda m, a, o, p=p: self.site(f"{p}.mlp.hook_pre", o)))
            handles.append(layer.mlp.act.register_forward_hook(lambda m, a, o, p=p: self.site(f"{p}.mlp.hook_post", o)))
            handles.append(layer.mlp.register_forward_hook(lambda m, a, o, p=p: self.site(f"{p}.hook_mlp_out", o)))
            def resid_post(mod, args, out, p=p):
                return (self.site(f"{p}.hook_resid_post", out[0]),) + tuple(out[1:])
            handles.append(layer.register_forward_hook(resid_post))
        handles.append(gpt.final_layer_norm.register_forward_hook(self.layer_norm("ln_final")))

        original = neox.eager_attention_forward
        def attention(module, query, key, value, attention_mask, scaling, dropout=0.0, head_mask=None, **kwargs):
            p = f"blocks.{module.layer_idx}.attn"
            rot_q = self.site(f"{p}.hook_rot_q", query.transpose(1, 2)).transpose(1, 2)
            rot_k = self.site(f"{p}.hook_rot_k", key.transpose(1, 2)).transpose(1, 2)
            scores = torch.matmul(rot_q, rot_k.transpose(2, 3)) * scaling
            T = scores.shape[-1]
            mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
            scores = self.site(f"{p}.hook_attn_scores", scores.masked_fill(mask, float("-inf")))
            pattern = torch.softmax(scores, dim=-1, dtype=torch.float32)
            pattern = torch.where(torch.isnan(pattern), torch.zeros_like(pattern), pattern)
            pattern = self.site(f"{p}.hook_pattern", pattern)
            return torch.matmul(pattern, value).transpose(1, 2).contiguous(), pattern
        neox.eager_attention_forward = attention
        try:
            with torch.no_grad():
                out = model(torch.tensor(tokens, dtype=torch.long), use_cache=False)
        finally:
            neox.eager_attention_forward = original
            for h in handles:
                h.remove()
        if not cfg.use_parallel_residual:
            for L in range(cfg.num_hidden_layers):
                self.acts[f"blocks.{L}.hook_resid_mid"] = self.acts[f"blocks.{L}.hook_attn_out"] + self.acts[f"blocks.{L}.hook_resid_pre"]
        return out.logits.detach().float()


def hf_pattern(model, tokens):
    """HF's own attention weights (output_attentions), as a check on the re-implementation."""
    with torch.no_grad():
        out = model(torch.tensor(tokens, dtype=torch.long), use_cache=False, output_attentions=True)
    return [a.float() for a in out.attentions]


RESIDUAL = ("hook_resid_pre", "hook_attn_out", "hook_mlp_out", "hook_resid_post", "hook_resid_mid")


def new_hooks(acts):
    """The hooks this area covers (the residual stream is the engine area's)."""
    return {k: v.float().contiguous() for k, v in acts.items() if not k.endswith(RESIDUAL)}


def load(path):
    return GPTNeoXForCausalLM.from_pretrained(path, torch_dtype=torch.float32, attn_implementation="eager").eval()


def read_tokens(path):
    with open(path) as f:
        return [[int(t) for t in line.split()] for line in f if line.strip()]


# ---------------------------------------------------------------- 1. tiny models: every hook

def tiny():
    for name in TINY:
        d = os.path.join(ENGINE, name)
        model, tokens = load(d), read_tokens(os.path.join(d, "tokens.txt"))
        hooked = Hooked(model)
        logits = hooked.run(tokens)
        with torch.no_grad():
            hf_logits = model(torch.tensor(tokens, dtype=torch.long), use_cache=False).logits
        assert torch.equal(logits, hf_logits), "recording hooks must not change the forward"
        for L, ref in enumerate(hf_pattern(model, tokens)):
            err = (hooked.acts[f"blocks.{L}.attn.hook_pattern"] - ref).abs().max().item()
            assert err < 1e-6, (name, L, err)
        out = os.path.join(OUT, name)
        os.makedirs(out, exist_ok=True)
        save_file(new_hooks(hooked.acts), os.path.join(out, "reference.safetensors"))
        print("wrote", out)


# ---------------------------------------------------------------- 2. pythia-mini summaries

def stats(t, samples=200):
    """Float64 sums over the finite values (the masked scores are −∞), the count of −∞, and a
    strided sample (null where −∞): flat indices start + i*stride."""
    x = t.double().flatten()
    finite = torch.isfinite(x)
    f = x[finite]
    n = x.numel()
    stride = max(1, n // samples)
    start = stride // 2
    idx = torch.arange(start, n, stride)[:samples]
    return dict(shape=list(t.shape), count=n, neginf=int((x == float("-inf")).sum()), sum=float(f.sum()),
                sumabs=float(f.abs().sum()), sumsq=float((f * f).sum()), maxabs=float(f.abs().max()),
                start=start, stride=stride,
                values=[float(f"{float(v):.9g}") if np.isfinite(float(v)) else None for v in x[idx]])


MINI_T = 48


def mini_tokens():
    return [minipile_row(0, MINI_T), minipile_row(1, MINI_T)]


def pythia_mini():
    models = os.path.join(SHARED, "models", "pythia-mini")
    if not os.path.isdir(models):
        print("no", models, "- skipping pythia-mini")
        return
    out = os.path.join(OUT, "pythia-mini")
    os.makedirs(out, exist_ok=True)
    tokens = mini_tokens()
    with open(os.path.join(out, "tokens.txt"), "w") as f:
        f.write("".join(" ".join(map(str, row)) + "\n" for row in tokens))
    for step in sorted(os.listdir(models)):
        if not step.startswith("step"):
            continue
        hooked = Hooked(load(os.path.join(models, step)))
        hooked.run(tokens)
        with open(os.path.join(out, f"{step}.json"), "w") as f:
            json.dump({k: stats(v) for k, v in sorted(new_hooks(hooked.acts).items())}, f, separators=(",", ":"))
        print("wrote", step)


# ---------------------------------------------------------------- 3. interventions

def cases_for(cfg):
    """Interventions exercised on a model: (case name, spec) with spec = hook, index, action, source."""
    L = cfg.num_hidden_layers
    H = cfg.num_attention_heads
    last = L - 1
    cases = [
        ("z_zero_head", dict(hook=f"blocks.{min(1, last)}.attn.hook_z", index=f"[:, :, {H - 1}]", action="zero")),
        ("z_mean_head", dict(hook="blocks.0.attn.hook_z", index="[:, :, 0]", action="mean")),
        ("mlp_post_mean", dict(hook=f"blocks.{last}.mlp.hook_post", index="[:, :, 10:50]", action="mean")),
        ("mlp_pre_zero", dict(hook="blocks.0.mlp.hook_pre", index="[:, -1]", action="zero")),
        ("pattern_zero_bos", dict(hook=f"blocks.{min(1, last)}.attn.hook_pattern", index="[:, 0, :, 0]", action="zero")),
        ("scores_patch", dict(hook="blocks.0.attn.hook_attn_scores", index="", action="patch", source="patch")),
        ("resid_post_patch_pos", dict(hook="blocks.0.hook_resid_post", index="[:, 3]", action="patch", source="patch")),
        ("v_patch_head", dict(hook=f"blocks.{last}.attn.hook_v", index=f"[:, :, {H - 1}]", action="patch", source="patch")),
        ("resid_post_add", dict(hook="blocks.0.hook_resid_post", index="", action="add", source="vector_d")),
        ("q_add_heads", dict(hook=f"blocks.{last}.attn.hook_q", index="[:, 2:]", action="add", source="vector_heads")),
        ("rot_k_zero", dict(hook=f"blocks.{last}.attn.hook_rot_k", index="[:, :, :, :4]", action="zero")),
        ("result_zero_head", dict(hook=f"blocks.{min(1, last)}.attn.hook_result", index="[:, :, 0]", action="zero")),
        ("ln1_normalized_zero", dict(hook="blocks.0.ln1.hook_normalized", index="[:, :, 0:8]", action="zero")),
        ("ln2_scale_add", dict(hook=f"blocks.{last}.ln2.hook_scale", index="", action="add", source="vector_one")),
        ("embed_zero_pos", dict(hook="hook_embed", index="[:, 2]", action="zero")),
        ("attn_out_mean", dict(hook="blocks.0.hook_attn_out", index="", action="mean")),
        ("mlp_out_patch", dict(hook=f"blocks.{last}.hook_mlp_out", index="[0]", action="patch", source="patch")),
        ("ln_final_normalized_mean", dict(hook="ln_final.hook_normalized", index="[:, :, :5]", action="mean")),
        ("ln_final_scale_patch", dict(hook="ln_final.hook_scale", index="", action="patch", source="patch")),
    ]
    return cases


COMPACT_CASES = ("z_zero_head", "pattern_zero_bos", "resid_post_patch_pos", "resid_post_add", "mlp_post_mean", "result_zero_head")


def next_token_nll(logits, tokens):
    """[B, T-1] next-token negative log-likelihoods in float64."""
    logp = torch.log_softmax(logits.double(), dim=-1)
    targets = torch.tensor(tokens)[:, 1:]
    return -logp[:, :-1].gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def interventions(name, model, tokens, other, compact=False):
    """compact (a 50k vocabulary): a subset of the cases, and of each run only the logits at the
    last position of sequence 0 plus every next-token NLL (which depends on every logit)."""
    cfg = model.config
    H, dh, d = cfg.num_attention_heads, cfg.hidden_size // cfg.num_attention_heads, cfg.hidden_size
    g = torch.Generator().manual_seed(7)
    hooked = Hooked(model)
    clean = hooked.run(tokens)
    tensors = {"clean.logits": clean[0, -1] if compact else clean}
    if compact:
        tensors["clean.nll"] = next_token_nll(clean, tokens)
    patch_run = Hooked(model)
    patch_run.run(other)
    manifest = {"tokens": tokens, "compact": compact, "cases": []}
    for case, spec in cases_for(cfg):
        if compact and case not in COMPACT_CASES:
            continue
        sources = {}
        src = spec.get("source")
        if src == "patch":
            sources[src] = patch_run.acts[spec["hook"]]
        elif src == "vector_d":
            sources[src] = 2 * torch.randn(d, generator=g)
        elif src == "vector_heads":
            sources[src] = torch.randn(H, dh, generator=g)
        elif src == "vector_one":
            sources[src] = torch.tensor([0.5])
        logits = Hooked(model).run(tokens, [(spec, sources)])
        delta = (logits - clean).abs().max().item()
        assert delta > 1e-4, f"{name}/{case} changes nothing (max |Δlogit| {delta})"
        tensors[f"{case}.logits"] = logits[0, -1] if compact else logits
        if compact:
            tensors[f"{case}.nll"] = next_token_nll(logits, tokens)
        if src:
            tensors[f"{case}.source"] = sources[src].float().contiguous()
        manifest["cases"].append(dict(name=case, **spec))
    os.makedirs(os.path.join(OUT, "interventions"), exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, "interventions", f"{name}.safetensors"))
    with open(os.path.join(OUT, "interventions", f"{name}.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print("wrote interventions", name, len(manifest["cases"]), "cases")


def all_interventions():
    for name in ("parallel_erf_r025", "sequential_tanh_r100"):
        d = os.path.join(ENGINE, name)
        model, tokens = load(d), read_tokens(os.path.join(d, "tokens.txt"))
        rng = np.random.default_rng(11)
        other = rng.integers(0, model.config.vocab_size, size=np.array(tokens).shape).tolist()
        interventions(name, model, tokens, other)
    step = os.path.join(SHARED, "models", "pythia-mini", "step2000")
    if os.path.isdir(step):
        tokens = mini_tokens()
        other = [minipile_row(2, MINI_T), minipile_row(3, MINI_T)]
        interventions("pythia-mini-step2000", load(step), tokens, other, compact=True)


# ---------------------------------------------------------------- 4. TransformerLens itself

def transformer_lens():
    try:
        from transformer_lens import HookedTransformer, HookedTransformerConfig
        from transformer_lens.pretrained.weight_conversions.neox import convert_neox_weights
        import transformer_lens
    except ImportError:
        print("transformer_lens not installed - keeping the committed tl_hooks.json")
        return
    step = os.path.join(SHARED, "models", "pythia-mini", "step2000")
    if not os.path.isdir(step):
        return
    model = load(step)
    c = model.config
    d_head = c.hidden_size // c.num_attention_heads
    # TransformerLens's own GPT-NeoX config mapping (loading_from_pretrained, GPTNeoXForCausalLM).
    cfg = HookedTransformerConfig(d_model=c.hidden_size, d_head=d_head, n_heads=c.num_attention_heads,
                                  d_mlp=c.intermediate_size, n_layers=c.num_hidden_layers, n_ctx=c.max_position_embeddings,
                                  eps=c.layer_norm_eps, d_vocab=c.vocab_size, act_fn=c.hidden_act, use_attn_scale=True,
                                  use_local_attn=False, scale_attn_by_inverse_layer_idx=False, parallel_attn_mlp=True,
                                  positional_embedding_type="rotary", rotary_adjacent_pairs=False, normalization_type="LN",
                                  rotary_dim=round(c.rotary_pct * d_head), rotary_base=c.rotary_emb_base,
                                  original_architecture="GPTNeoXForCausalLM", use_attn_result=True, dtype=torch.float32,
                                  device="cpu")
    tl = HookedTransformer(cfg)
    tl.load_state_dict(convert_neox_weights(model, cfg), strict=False)
    tl.eval()
    tokens = mini_tokens()
    with torch.no_grad():
        tl_logits, cache = tl.run_with_cache(torch.tensor(tokens))
    hooked = Hooked(model)
    logits = hooked.run(tokens)
    print("TransformerLens", importlib.metadata.version("transformer_lens"),
          "max |logits - HF| =", (tl_logits - logits).abs().max().item())
    worst = 0.0
    for key, value in cache.items():
        ref = hooked.acts.get(key)
        if ref is None:
            continue
        if key.endswith("hook_normalized") and not key.startswith("ln_final.x"):
            # TL 2.x records hook_normalized after the affine; ours is TL 3.x's (before it).
            ln = tl.ln_final if key.startswith("ln_final") else getattr(tl.blocks[int(key.split(".")[1])], key.split(".")[2])
            ref = ref * ln.w + ln.b
        finite = torch.isfinite(ref)
        assert torch.equal(finite, torch.isfinite(value)), key
        err = ((value[finite] - ref[finite]).abs() / (1 + ref[finite].abs())).max().item()
        worst = max(worst, err)
        assert err < 1e-4, (key, err)
    print("every TransformerLens cache entry agrees with the HF-side reference: max relative error", worst)
    names = {k: list(v.shape) for k, v in cache.items()}
    with open(os.path.join(OUT, "tl_hooks.json"), "w") as f:
        json.dump({"transformer_lens": importlib.metadata.version("transformer_lens"),
                   "model": "pythia-mini step2000, B=2, T=%d, use_attn_result=True" % MINI_T,
                   "cache": names, "hook_points": sorted(tl.hook_dict.keys())}, f, indent=1)
    print("wrote tl_hooks.json:", len(names), "cached hooks,", len(tl.hook_dict), "hook points")


if __name__ == "__main__":
    parts = sys.argv[1:] or ["tiny", "pythia-mini", "interventions", "tl"]
    if "tiny" in parts:
        tiny()
    if "pythia-mini" in parts:
        pythia_mini()
    if "interventions" in parts:
        all_interventions()
    if "tl" in parts:
        transformer_lens()
