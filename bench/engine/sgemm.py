#!/usr/bin/env python3
"""sgemm rate of the OpenBLAS the engine links (libopenblas.so.0 via ctypes, its default threads):
C[2048, 3072] = A[2048, 768] · B[768, 3072], the MLP up-projection's shape. Prints GFLOP/s (best of N)."""
import ctypes, ctypes.util, sys, time
import numpy as np

lib = ctypes.CDLL(ctypes.util.find_library("openblas") or "libopenblas.so.0")
M, N, K = 2048, 3072, 768
a = np.random.rand(M, K).astype(np.float32); b = np.random.rand(N, K).astype(np.float32)
c = np.zeros((M, N), np.float32)
p = lambda x: x.ctypes.data_as(ctypes.c_void_p)
f = ctypes.c_float
lib.openblas_get_num_threads.restype = ctypes.c_int
best = float("inf")
for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 10):
    t0 = time.perf_counter()
    # RowMajor=101, NoTrans=111, Trans=112: C = A · Bᵀ, as the engine's nn.Linear calls.
    lib.cblas_sgemm(101, 111, 112, M, N, K, f(1.0), p(a), K, p(b), K, f(0.0), p(c), N)
    best = min(best, time.perf_counter() - t0)
assert np.allclose(c[:2, :2], a[:2] @ b[:2].T, rtol=1e-4)
print(f"sgemm {2 * M * N * K / best / 1e9:.1f} GFLOP/s threads {lib.openblas_get_num_threads()}")
