"""Reference statistics shared by the fixture scripts, defined once so every fixture means the
same thing by a name (Python puts this directory on sys.path when a generate_*.py runs)."""
import numpy as np


def kurtosis(x):
    """Pearson (non-excess) kurtosis of all elements in float64: n·Σ(x−μ)⁴ / (Σ(x−μ)²)²; None if constant."""
    x = np.asarray(x, dtype=np.float64).ravel()
    c = x - x.mean()
    m2 = np.sum(c * c)
    if m2 == 0:
        return None
    return float(x.size * np.sum(c ** 4) / (m2 * m2))
