#!/usr/bin/env python3
"""Reference numbers for the analysis probes (issue 13), computed independently with numpy /
scipy / PyTorch / HF transformers / HF tokenizers in float64. Writes Tests/Fixtures/analyses/:

  synthetic.json   small arrays + expected pure statistics (logistic fit, quantiles, correlations)
  pythia_mini.json expected rows and files of a sweep of every pythia-mini step with the probes
                   activation_histograms, embeddings, spectra, svd_directions, weight_shape

Definitions (mirrored in Sources/ProbeStats and Sources/Sweep/AnalysisProbes.swift):
  activation histograms  tokens = rows 0..1 of minipile document.bin, first 256 tokens each (as
        generate_sweep.py); sites via HF forward hooks (TransformerLens semantics); per site
        R = max|x| of step 2000 (the suite's last step) on those tokens, 64 bins over [-R, R],
        bin = floor((x+R)/(2R)*B) (x = R -> B-1), under/overflow outside.
  embeddings    numpy.corrcoef(E[:256]) of gpt_neox.embed_in.weight; per-token L2 norms of
        embed_in / embed_out: mean, std (ddof 0), min, max, numpy.quantile 0.1/0.5/0.9.
  spectra       torch.linalg.svdvals (float64) of the full matrices: QKV, dense, dense_h_to_4h,
        dense_4h_to_h, per head W_O W_V and W_Q^T W_K formed as d x d products (first d_head values);
        stable rank = sum s^2 / s_max^2.
  svd_directions  torch.linalg.svd of dense_4h_to_h (d x ff) and of the d x d W_O W_V: the first 4
        left singular vectors, sign so the largest |component| (first on ties) is positive;
        scores = embed_out (float64) @ u; top = 10 ids by (-score, id), bottom = 10 ids by
        (score, id); decoded one id at a time by HF tokenizers (skip_special_tokens=False, as the
        engine decodes); overlap with step 2000's same
        direction = max(|T∩T'|+|B∩B'|, |T∩B'|+|B∩T'|) / 20.
  weight_shape  per floating tensor (not constant): Gaussian MLE (mean, std ddof 0) mean
        scipy.stats.norm.logpdf; scipy.stats.logistic.fit (MLE) mean logistic.logpdf; QQ at the
        fixed probabilities: numpy.quantile, norm.ppf, logistic.ppf.

Run from the repository root:  ../venv/bin/python Tests/Fixtures/generate_analyses.py
"""
import json
import os
import sys

import numpy as np
import scipy.stats
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from generate_sweep import SHARED, SUITE, STEPS, activations, load_model, read_rows  # noqa: E402
from generate_probes import load_step  # noqa: E402

OUT = os.path.join(HERE, "analyses")
FINAL = STEPS[-1]
SITES = ["resid_pre", "attn_out", "mlp_out", "resid_post"]
BINS = 64
CORRELATION_TOKENS = 256
DIRECTIONS = 4
TOKENS = 10
PROBABILITIES = [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999]
SPECTRA_STEPS = [0, 16, 512, 2000]
SHAPE_STEPS = [0, 2000]
CORRELATION_ROW_STEPS = [0, 2000]
CORRELATION_ROWS = 6


def hist_metrics(x, R):
    x = np.asarray(x, dtype=np.float64).ravel()
    idx = np.floor((x + R) / (2 * R) * BINS)
    inside = (x >= -R) & (x <= R)
    counts = np.bincount(np.clip(idx[inside], 0, BINS - 1).astype(np.int64), minlength=BINS)
    out = {"hist_range": R, "hist_underflow": int(np.sum(x < -R)), "hist_overflow": int(np.sum(x > R))}
    width = len(str(BINS - 1))
    for i, c in enumerate(counts):
        out["hist_bin_" + str(i).zfill(width)] = int(c)
    return out


def norm_summary(norms):
    return {"token_norm_mean": float(norms.mean()), "token_norm_std": float(norms.std()),
            "token_norm_min": float(norms.min()), "token_norm_max": float(norms.max()),
            "token_norm_p10": float(np.quantile(norms, 0.1)), "token_norm_p50": float(np.quantile(norms, 0.5)),
            "token_norm_p90": float(np.quantile(norms, 0.9))}


def shape_metrics(w):
    x = np.asarray(w, dtype=np.float64).ravel()
    mu, sigma = float(x.mean()), float(x.std())
    if x.size < 2 or sigma == 0:
        return None
    loc, scale = scipy.stats.logistic.fit(x)
    g = float(np.mean(scipy.stats.norm.logpdf(x, mu, sigma)))
    l = float(np.mean(scipy.stats.logistic.logpdf(x, loc, scale)))
    out = {"gaussian_loglik": g, "logistic_loglik": l, "logistic_minus_gaussian_loglik": l - g,
           "logistic_better": 1 if l > g else 0, "logistic_loc": float(loc), "logistic_scale": float(scale)}
    empirical = np.quantile(x, PROBABILITIES)
    for i, p in enumerate(PROBABILITIES):
        out[f"qq_{i:02d}_p"] = p
        out[f"qq_{i:02d}_empirical"] = float(empirical[i])
        out[f"qq_{i:02d}_gaussian"] = float(scipy.stats.norm.ppf(p, mu, sigma))
        out[f"qq_{i:02d}_logistic"] = float(scipy.stats.logistic.ppf(p, loc, scale))
    return out


def heads(weights, layer, config):
    d = config["hidden_size"]; H = config["num_attention_heads"]; dh = d // H
    qkv = weights[f"gpt_neox.layers.{layer}.attention.query_key_value.weight"]
    dense = weights[f"gpt_neox.layers.{layer}.attention.dense.weight"]
    out = []
    for h in range(H):
        base = 3 * dh * h
        wq, wk, wv = qkv[base:base + dh], qkv[base + dh:base + 2 * dh], qkv[base + 2 * dh:base + 3 * dh]
        wo = dense[:, dh * h:dh * (h + 1)]
        out.append((wq, wk, wv, wo))
    return out, dh


def svdvals(m):
    return torch.linalg.svdvals(torch.tensor(m, dtype=torch.float64)).numpy()


def left_vectors(m, k):
    u, s, _ = torch.linalg.svd(torch.tensor(m, dtype=torch.float64), full_matrices=False)
    u = u.numpy()[:, :k]
    vectors = []
    for j in range(u.shape[1]):
        v = u[:, j]
        if v[int(np.argmax(np.abs(v)))] < 0:
            v = -v
        vectors.append(v)
    return s.numpy(), vectors


def ends(unembedding, u):
    scores = unembedding @ u
    ids = np.arange(scores.size)
    top = np.lexsort((ids, -scores))[:TOKENS]
    bottom = np.lexsort((ids, scores))[:TOKENS]
    return [int(i) for i in top], [int(i) for i in bottom]


def overlap(a, b):
    common = lambda x, y: len(set(x) & set(y))
    same = common(a[0], b[0]) + common(a[1], b[1])
    flipped = common(a[0], b[1]) + common(a[1], b[0])
    return max(same, flipped) / (len(a[0]) + len(a[1]))


def directions(weights, config):
    d = config["hidden_size"]; L = config["num_hidden_layers"]
    unembedding = weights["embed_out.weight"]
    result = []
    for layer in range(L):
        prefix = f"gpt_neox.layers.{layer}."
        s, vs = left_vectors(weights[prefix + "mlp.dense_4h_to_h.weight"], DIRECTIONS)
        result.append((layer, prefix + "mlp.dense_4h_to_h", s, [ends(unembedding, v) for v in vs]))
        hs, _ = heads(weights, layer, config)
        for h, (wq, wk, wv, wo) in enumerate(hs):
            s, vs = left_vectors(wo @ wv, DIRECTIONS)
            result.append((layer, prefix + f"attention.w_ov.head{h}", s, [ends(unembedding, v) for v in vs]))
    return result


def synthetic():
    rng = np.random.default_rng(1313)
    heavy = (rng.standard_t(df=3, size=3001) * 0.02 + 0.001).astype(np.float32)
    normal = (rng.normal(size=2000) * 0.5 - 0.25).astype(np.float32)
    matrix = rng.normal(size=(9, 7)).astype(np.float32)
    matrix[4] += 3.0
    expected = {
        "heavy": [float(v) for v in heavy], "normal": [float(v) for v in normal],
        "matrix": [[float(v) for v in row] for row in matrix],
        "shape_heavy": shape_metrics(heavy), "shape_normal": shape_metrics(normal),
        "correlations": np.corrcoef(matrix.astype(np.float64)).ravel().tolist(),
        "norm_summary": norm_summary(np.linalg.norm(matrix.astype(np.float64), axis=1)),
        "probabilities": PROBABILITIES,
        "normal_quantiles": [float(scipy.special.ndtri(p)) for p in PROBABILITIES + [1e-12, 0.3, 0.975, 1 - 1e-9]],
        "normal_quantile_points": PROBABILITIES + [1e-12, 0.3, 0.975, 1 - 1e-9],
    }
    with open(os.path.join(OUT, "synthetic.json"), "w") as f:
        json.dump(expected, f)


def real():
    from tokenizers import Tokenizer
    tokenizer = Tokenizer.from_file(os.path.join(SHARED, "tokenizer", "20B_tokenizer.json"))
    tokens = read_rows(os.path.join(SHARED, "data", "minipile", "document"), (0, 2), 256)
    rows = []
    acts = {}
    for step in STEPS:
        acts[step], _ = activations(load_model(step), tokens)
    ranges = {}
    for key, x in acts[FINAL].items():
        R = float(np.abs(x).max())
        ranges[key] = R if R > 0 else 1.0
    for step in STEPS:
        for (layer, site), x in sorted(acts[step].items(), key=lambda kv: (kv[0][0], SITES.index(kv[0][1]))):
            for metric, value in hist_metrics(x, ranges[(layer, site)]).items():
                rows.append([step, layer, site, metric, value])
    del acts

    models = {s: load_step(s) for s in STEPS}
    final_directions = {m: e for (_, m, _, e) in directions(*models[FINAL])}
    direction_files = {}
    spectra = {}
    correlation_rows = {}
    for step in STEPS:
        weights, config = models[step]
        d = config["hidden_size"]; ff = config["intermediate_size"]
        E = weights["gpt_neox.embed_in.weight"]
        corr = np.corrcoef(E[:CORRELATION_TOKENS])
        for metric, value in norm_summary(np.linalg.norm(E, axis=1)).items():
            rows.append([step, None, "embedding:embed_in", metric, value])
        off = corr[~np.eye(CORRELATION_TOKENS, dtype=bool)]
        rows.append([step, None, "embedding:embed_in", "correlation_mean_offdiag", float(off.mean())])
        rows.append([step, None, "embedding:embed_in", "correlation_tokens", CORRELATION_TOKENS])
        for metric, value in norm_summary(np.linalg.norm(weights["embed_out.weight"], axis=1)).items():
            rows.append([step, None, "embedding:embed_out", metric, value])
        if step in CORRELATION_ROW_STEPS:
            correlation_rows[str(step)] = corr[:CORRELATION_ROWS].tolist()

        if step in SPECTRA_STEPS:
            entries = []
            for layer in range(config["num_hidden_layers"]):
                prefix = f"gpt_neox.layers.{layer}."
                for name in ["attention.query_key_value", "attention.dense", "mlp.dense_h_to_4h", "mlp.dense_4h_to_h"]:
                    entries.append([layer, prefix + name, svdvals(weights[prefix + name + ".weight"]).tolist()])
                hs, dh = heads(weights, layer, config)
                for h, (wq, wk, wv, wo) in enumerate(hs):
                    entries.append([layer, prefix + f"attention.w_ov.head{h}", svdvals(wo @ wv)[:dh].tolist()])
                    entries.append([layer, prefix + f"attention.w_qk.head{h}", svdvals(wq.T @ wk)[:dh].tolist()])
            spectra[str(step)] = entries
            for layer, matrix, values in entries:
                s = np.asarray(values)
                rows.append([step, layer, "spectrum:" + matrix, "sv_count", len(values)])
                rows.append([step, layer, "spectrum:" + matrix, "stable_rank", float(np.sum(s * s) / s[0] ** 2)])

        records = []
        for layer, matrix, s, es in directions(weights, config):
            overlaps = []
            for k, e in enumerate(es):
                o = overlap(e, final_directions[matrix][k])
                overlaps.append(o)
                rows.append([step, layer, "svd:" + matrix, f"overlap_final_dir{k + 1}", o])
                records.append({"layer": layer, "matrix": matrix, "direction": k + 1, "singular_value": float(s[k]),
                                "top_ids": e[0], "top_tokens": [tokenizer.decode([i], skip_special_tokens=False) for i in e[0]],
                                "bottom_ids": e[1], "bottom_tokens": [tokenizer.decode([i], skip_special_tokens=False) for i in e[1]],
                                "overlap_final": o})
            rows.append([step, layer, "svd:" + matrix, "overlap_final_mean", float(np.mean(overlaps))])
        direction_files[str(step)] = records

        if step in SHAPE_STEPS:
            for name in sorted(weights):
                if not np.issubdtype(weights[name].dtype, np.floating):
                    continue
                m = shape_metrics(weights[name])
                if m is None:
                    continue
                layer = int(name.split(".")[2]) if name.startswith("gpt_neox.layers.") else None
                for metric, value in m.items():
                    rows.append([step, layer, "weights:" + name, metric, value])
    with open(os.path.join(OUT, "pythia_mini.json"), "w") as f:
        json.dump({"steps": STEPS, "final_step": FINAL, "bins": BINS, "rows_range": [0, 2], "seq_len": 256,
                   "spectra_steps": SPECTRA_STEPS, "shape_steps": SHAPE_STEPS, "directions": DIRECTIONS, "tokens": TOKENS,
                   "correlation_rows": correlation_rows, "spectra": spectra, "svd_directions": direction_files,
                   "rows": rows}, f)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    synthetic()
    if os.path.isdir(SUITE):
        real()
    else:
        print("no pythia-mini under", SHARED, "- skipping real-checkpoint references", file=sys.stderr)
    print("wrote", OUT)
