#!/usr/bin/env python3
"""How to thread the engine's GEMMs: OpenBLAS's own threads on the whole product vs the engine's
scheme (OpenBLAS single-threaded, row slices handed dynamically to one thread per core).
Runs the forward pass's four nn.Linear shapes (T = 2048, pythia-160m) interleaved, best of N each.
Usage: gemm_threads.py [N]   (uses libopenblas.so.0 through ctypes; prints GFLOP/s per variant)"""
import ctypes, ctypes.util, os, sys, threading, time
import numpy as np

lib = ctypes.CDLL(ctypes.util.find_library("openblas") or "libopenblas.so.0")
f, p = ctypes.c_float, lambda x: x.ctypes.data_as(ctypes.c_void_p)
cores = os.cpu_count()
T, d, ff = 2048, 768, 3072
shapes = {"qkv": (d, 3 * d), "dense": (d, d), "up": (d, ff), "down": (ff, d)}


def sgemm(x, w, y, r0, r1):
    # y[r0:r1] = x[r0:r1] · wᵀ  (RowMajor=101, NoTrans=111, Trans=112), as Kernels.linear
    K, N = x.shape[1], w.shape[0]
    lib.cblas_sgemm(101, 111, 112, r1 - r0, N, K, f(1.0), ctypes.c_void_p(x.ctypes.data + 4 * r0 * K), K,
                    p(w), K, f(0.0), ctypes.c_void_p(y.ctypes.data + 4 * r0 * N), N)


def whole(x, w, y):
    lib.openblas_set_num_threads(cores)
    sgemm(x, w, y, 0, T)


def sliced(x, w, y, slices):
    lib.openblas_set_num_threads(1)
    todo = list(range(slices))
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                if not todo: return
                s = todo.pop(0)
            sgemm(x, w, y, T * s // slices, T * (s + 1) // slices)
    ts = [threading.Thread(target=worker) for _ in range(cores)]
    for t in ts: t.start()
    for t in ts: t.join()


variants = {"openblas-threads": whole, "slices×2": lambda x, w, y: sliced(x, w, y, 2),
            "slices×8": lambda x, w, y: sliced(x, w, y, 8), "slices×16": lambda x, w, y: sliced(x, w, y, 16)}
repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
best = {(s, v): float("inf") for s in shapes for v in variants}
for _ in range(repeats):
    for s, (K, N) in shapes.items():
        x = np.random.rand(T, K).astype(np.float32); w = np.random.rand(N, K).astype(np.float32)
        y = np.zeros((T, N), np.float32)
        for v, fn in variants.items():
            t0 = time.perf_counter(); fn(x, w, y); best[s, v] = min(best[s, v], time.perf_counter() - t0)
print(f"{cores} cores, load {open('/proc/loadavg').read().split()[:3]}; GFLOP/s, best of {repeats}")
print("shape  " + "".join(f"{v:>18}" for v in variants))
for s, (K, N) in shapes.items():
    print(f"{s:6} " + "".join(f"{2 * T * K * N / best[s, v] / 1e9:18.1f}" for v in variants))
