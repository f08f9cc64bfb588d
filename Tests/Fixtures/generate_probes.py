#!/usr/bin/env python3
"""Reference values for the Probes tests, computed independently with numpy/torch in float64.

Writes into Tests/Fixtures/probes/:
  synthetic.bin            little-endian float32 arrays (layout in synthetic.json)
  synthetic.json           array layout + expected outlier stats, CKA, weight stats, spectra
  pythia_mini_expected.json  expected MetricRows for real pythia-mini weights (../shared)

Definitions mirrored (and documented in the Swift sources):
  kurtosis      Pearson (non-excess): n * sum((x-mean)^4) / sum((x-mean)^2)^2
  mean_norm     mean over tokens of the L2 norm of the token's vector
  linear CKA    ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F), Xc/Yc column-centred
  debiased CKA  unbiased HSIC (Song et al. 2012) per consecutive minibatch of k rows (a trailing
                partial batch is dropped), CKA = mean hsic(K,L) / sqrt(mean hsic(K,K) mean hsic(L,L))
  histogram     bins over [-R, R], R = max|w_ref| (1 if 0); bin = floor((w+R)/(2R)*B), w=R -> B-1
  erank         exp(-sum p log p), p = s/sum(s) from torch.linalg.svdvals; per = erank / hidden
  msd           mean((W_t - W_prev)^2)
Run: ../venv/bin/python Tests/Fixtures/generate_probes.py   (from the repository root)
"""
import json
import os
import sys

import numpy as np

from fixture_math import kurtosis
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "probes")
SHARED = os.environ.get("NEOXPROBE_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))


def outliers(x, top_k):
    x = x.astype(np.float64)
    a = np.abs(x)
    flat = int(np.argmax(a))  # first occurrence in row-major order
    token, dim = divmod(flat, x.shape[1])
    per_dim = [kurtosis(x[:, j]) for j in range(x.shape[1])]
    defined = [(v, j) for j, v in enumerate(per_dim) if v is not None]
    best_value = max(v for v, _ in defined)
    best_dim = min(j for v, j in defined if v == best_value)
    col_max = a.max(axis=0)
    order = sorted(range(x.shape[1]), key=lambda j: (-col_max[j], j))[:top_k]
    return {
        "max_abs": float(a.max()), "argmax_token": token, "argmax_dim": dim,
        "mean_norm": float(np.linalg.norm(x, axis=1).mean()),
        "kurtosis": kurtosis(x),
        "max_dim_kurtosis": best_value, "max_dim_kurtosis_dim": best_dim,
        "top_dims": order, "top_max_abs": [float(col_max[j]) for j in order],
    }


def linear_cka(x, y):
    x = torch.tensor(x, dtype=torch.float64)
    y = torch.tensor(y, dtype=torch.float64)
    xc = x - x.mean(0)
    yc = y - y.mean(0)
    num = torch.linalg.matrix_norm(yc.T @ xc) ** 2
    den = torch.linalg.matrix_norm(xc.T @ xc) * torch.linalg.matrix_norm(yc.T @ yc)
    return float(num / den)


def hsic1(k, l):
    n = k.shape[0]
    k = k.clone(); l = l.clone()
    k.fill_diagonal_(0); l.fill_diagonal_(0)
    one = torch.ones(n, dtype=torch.float64)
    trace = torch.sum(k * l)
    term2 = (one @ k @ one) * (one @ l @ one) / ((n - 1) * (n - 2))
    term3 = 2.0 / (n - 2) * (one @ k @ l @ one)
    return float((trace + term2 - term3) / (n * (n - 3)))


def debiased_cka(x, y, k):
    x = torch.tensor(x, dtype=torch.float64)
    y = torch.tensor(y, dtype=torch.float64)
    xy = xx = yy = 0.0
    batches = x.shape[0] // k
    for b in range(batches):
        xb, yb = x[b * k:(b + 1) * k], y[b * k:(b + 1) * k]
        K, L = xb @ xb.T, yb @ yb.T
        xy += hsic1(K, L); xx += hsic1(K, K); yy += hsic1(L, L)
    return (xy / batches) / np.sqrt((xx / batches) * (yy / batches)), batches


def erank(s):
    s = np.asarray(s, dtype=np.float64)
    p = s / s.sum()
    p = p[p > 0]
    return float(np.exp(-np.sum(p * np.log(p))))


def svdvals(m):
    return torch.linalg.svdvals(torch.tensor(np.asarray(m, dtype=np.float64))).numpy()


def weight_stats(w, ref, bins):
    w = np.asarray(w, dtype=np.float64).ravel()
    out = {
        "frobenius_norm": float(np.sqrt(np.sum(w * w))),
        "mean": float(w.mean()), "std": float(w.std()),
        "max_abs": float(np.abs(w).max()),
    }
    k = kurtosis(w)
    if k is not None:
        out["kurtosis"] = k
    if ref is not None:
        r = np.asarray(ref, dtype=np.float64).ravel()
        out["distance_from_reference"] = float(np.sqrt(np.sum((w - r) ** 2)))
        R = float(np.abs(r).max())
        R = R if R > 0 else 1.0
        idx = np.floor((w + R) / (2 * R) * bins)
        under = int(np.sum(w < -R)); over = int(np.sum(w > R))
        inside = (w >= -R) & (w <= R)
        idx = np.clip(idx[inside], 0, bins - 1).astype(np.int64)
        counts = np.bincount(idx, minlength=bins)
        out["hist_range"] = R
        out["hist_underflow"] = under
        out["hist_overflow"] = over
        width = len(str(bins - 1))
        for i, c in enumerate(counts):
            out["hist_bin_" + str(i).zfill(width)] = int(c)
    return out


def spectral(s, hidden):
    e = erank(s)
    return {"effective_rank": e, "per": e / hidden, "spectral_norm": float(np.max(s))}


def head_ov(qkv, dense, head, d, dh):
    wv = qkv[3 * dh * head + 2 * dh: 3 * dh * (head + 1), :].astype(np.float64)
    wo = dense[:, dh * head: dh * (head + 1)].astype(np.float64)
    return wo @ wv  # full d x d product, the straightforward way


def synthetic():
    rng = np.random.default_rng(20240505)
    n, dx, dy = 317, 24, 16
    x = rng.normal(size=(n, dx))
    x[:, 3] += 40.0                      # large-mean dimension (cancellation check)
    x[:, 7] *= 6.0                       # wide dimension
    x[123, 5] = 87.5                     # the global outlier
    x[200, 17] = -60.25
    x = x.astype(np.float32)
    b = rng.normal(size=(dx, dy))
    y = (np.tanh(x.astype(np.float64) @ b / 8.0) + 0.3 * rng.normal(size=(n, dy)) + 5.0).astype(np.float32)
    w = (rng.standard_t(df=5, size=(40, dx)) * 0.05).astype(np.float32)
    w_ref = (w + 0.02 * rng.normal(size=w.shape)).astype(np.float32)
    w_ref[0, 0] = 0.5 * np.abs(w).max()  # keep some of w outside [-R, R]
    w_ref = (w_ref * 0.8).astype(np.float32)
    w_prev = (w - 0.01 * rng.normal(size=w.shape)).astype(np.float32)
    d, heads = 12, 3
    dh = d // heads
    qkv = rng.normal(size=(3 * d, d)).astype(np.float32)
    dense = rng.normal(size=(d, d)).astype(np.float32)

    arrays = {"x": x, "y": y, "w": w, "w_ref": w_ref, "w_prev": w_prev, "qkv": qkv, "dense": dense}
    layout = {}
    blob = bytearray()
    for name, a in arrays.items():
        layout[name] = {"offset": len(blob) // 4, "shape": list(a.shape)}
        blob += a.astype("<f4").tobytes()
    with open(os.path.join(OUT, "synthetic.bin"), "wb") as f:
        f.write(blob)

    k = 50
    dcka, batches = debiased_cka(x, y, k)
    s_w = svdvals(w)
    expected = {
        "outliers_x": outliers(x, 5),
        "outliers_y": outliers(y, 3),
        "cka_xy": linear_cka(x, y),
        "cka_xx": linear_cka(x, x),
        "cka_x_2x_plus_1": linear_cka(x, 2 * x.astype(np.float64) + 1),
        "debiased_minibatch": k,
        "debiased_cka_xy": float(dcka),
        "debiased_batches": batches,
        "weight_bins": 16,
        "weight_stats": weight_stats(w, w_ref, 16),
        "msd": float(np.mean((w.astype(np.float64) - w_prev.astype(np.float64)) ** 2)),
        "singular_values_w": [float(v) for v in s_w],
        "spectral_w_hidden": dx,
        "spectral_w": spectral(s_w, dx),
        "ov_hidden": d, "ov_heads": heads,
        "ov": [],
    }
    for h in range(heads):
        s = svdvals(head_ov(qkv, dense, h, d, dh))
        expected["ov"].append({"singular_values": [float(v) for v in s[:dh]], **spectral(s, d)})
    with open(os.path.join(OUT, "synthetic.json"), "w") as f:
        json.dump({"layout": layout, "expected": expected}, f, indent=1)


STEPS = [0, 4, 16, 64, 256, 512, 1000, 2000]
TENSORS = [
    "gpt_neox.layers.0.attention.query_key_value.weight",
    "gpt_neox.layers.0.attention.query_key_value.bias",
    "gpt_neox.layers.1.attention.dense.weight",
    "gpt_neox.layers.2.mlp.dense_4h_to_h.weight",
    "gpt_neox.layers.3.input_layernorm.weight",
    "embed_out.weight",
]


def load_step(step):
    directory = os.path.join(SHARED, "models", "pythia-mini", f"step{step}")
    from safetensors.numpy import load_file
    tensors = {}
    files = sorted(os.listdir(directory))
    if "model.safetensors" in files:
        tensors.update(load_file(os.path.join(directory, "model.safetensors")))
    elif "model.safetensors.index.json" in files:
        for name in files:
            if name.startswith("model-") and name.endswith(".safetensors"):
                tensors.update(load_file(os.path.join(directory, name)))
    else:
        state = torch.load(os.path.join(directory, "pytorch_model.bin"), map_location="cpu", weights_only=True)
        tensors = {k: v.float().numpy() for k, v in state.items()}
    with open(os.path.join(directory, "config.json")) as f:
        config = json.load(f)
    return {k: np.asarray(v).astype(np.float64) for k, v in tensors.items()}, config


def real():
    models = {s: load_step(s) for s in STEPS}
    reference = models[STEPS[-1]][0]
    bins = 32
    rows = []
    for i, step in enumerate(STEPS):
        weights, config = models[step]
        d = config["hidden_size"]; heads = config["num_attention_heads"]; dh = d // heads
        previous = models[STEPS[i - 1]][0] if i > 0 else None
        for name in TENSORS:
            layer = int(name.split(".")[2]) if name.startswith("gpt_neox.layers.") else None
            site = "weights:" + name
            w = weights[name]
            for metric, value in weight_stats(w, reference[name], bins).items():
                rows.append([step, layer, site, metric, value])
            if name == "embed_out.weight" and previous is not None:
                rows.append([step, layer, site, "msd", float(np.mean((w - previous[name]) ** 2))])
            if name.endswith(".attention.dense.weight") or name.endswith(".mlp.dense_4h_to_h.weight"):
                for metric, value in spectral(svdvals(w), d).items():
                    rows.append([step, layer, site, metric, value])
        for layer in range(config["num_hidden_layers"]):
            qkv = weights[f"gpt_neox.layers.{layer}.attention.query_key_value.weight"]
            dense = weights[f"gpt_neox.layers.{layer}.attention.dense.weight"]
            for h in range(heads):
                s = svdvals(head_ov(qkv, dense, h, d, dh))
                site = f"weights:gpt_neox.layers.{layer}.attention.w_ov.head{h}"
                for metric, value in spectral(s, d).items():
                    rows.append([step, layer, site, metric, value])
    with open(os.path.join(OUT, "pythia_mini_expected.json"), "w") as f:
        json.dump({"steps": STEPS, "reference_step": STEPS[-1], "histogram_bins": bins,
                   "tensors": TENSORS, "rows": rows}, f)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    synthetic()
    if os.path.isdir(os.path.join(SHARED, "models", "pythia-mini")):
        real()
    else:
        print("no pythia-mini under", SHARED, "- skipping real-weight references", file=sys.stderr)
    print("wrote", OUT)
