"""Float64 NumPy references of the benchmark cases, shared by the package's own runners (native.py) and
the suite scripts under benchmarks/python (gpu_bench, session_bench, graph_eager_ab_bench, fusion_bench):
attention (scale 1/sqrt(d), no mask), conv 3x3 stride 1 pad 1 + bias + ReLU, GELU (erf), layer norm
without affine, and the seed's conv -> qkv repeat -> attention chain.
Tests: tests/python/test_bench_harness.py (through the runners); the op tests have their own references."""
import math

import numpy as np

__all__ = ["ref_attention", "ref_conv_relu", "ref_gelu", "ref_layer_norm", "ref_chain"]


def ref_attention(q, k, v):
    s = (q @ k.T) / math.sqrt(q.shape[1])
    s -= s.max(axis=1, keepdims=True)
    p = np.exp(s)
    return (p / p.sum(axis=1, keepdims=True)) @ v


def ref_conv_relu(x, w, b):
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))
    y = np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2) + b[None, :, None, None]
    return np.maximum(y, 0)


def ref_gelu(x):
    try:
        from scipy.special import erf
    except ImportError:
        from math import erf
        erf = np.vectorize(erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def ref_layer_norm(x, eps=1e-5):
    mu = x.mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(axis=-1, keepdims=True) + eps)


def ref_chain(x, w, b, seq, hd):
    """conv3x3 (stride 1, pad 1) + bias + ReLU, q|k|v[i] = conv_flat[i % size], attention; in float64."""
    y = ref_conv_relu(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64)).ravel()
    sd = seq * hd
    qkv = y[np.arange(3 * sd) % y.size]
    return ref_attention(*(qkv[j * sd:(j + 1) * sd].reshape(seq, hd) for j in range(3)))
