"""NumPy reference of lc.sample (docs/python_api.md, "Index ops"; the kernels' arithmetic is
src/core/sample_math.h).

- ``philox4x32_10(ctr, key)``: the counter-based generator (Salmon et al., SC'11), vectorised over rows of
  ``ctr`` (uint32 [..., 4]) with ``key`` (uint32 [2]).
- ``sample_bits(seed, step, rows)``: the 64 random bits of each row (counter = row lo, row hi, step lo,
  step hi; key = seed lo, seed hi); u = bits / 2**64.
- ``kept_probs(row, temperature, top_k, top_p)``: float64 probabilities after temperature, top-k, softmax and
  top-p (ties at both thresholds kept), as the op defines them (the kernels use 2**-40 fixed point).
- ``reference_tokens(logits, ...)``: the token of every row and its margin, the distance of u * total to
  the nearest cumulative boundary over total (a draw closer than ~1e-6 may go either way between the
  float64 reference and the kernels' fixed point).
Tests: tests/python/test_sample.py.
"""
import numpy as np

_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_W0, _W1 = np.uint32(0x9E3779B9), np.uint32(0xBB67AE85)
_LO = np.uint64(0xFFFFFFFF)


def philox4x32_10(ctr, key):
    c = np.asarray(ctr, dtype=np.uint32)
    c0, c1, c2, c3 = (c[..., i].astype(np.uint64) for i in range(4))
    k0, k1 = np.uint32(key[0]), np.uint32(key[1])
    with np.errstate(over="ignore"):
        for rnd in range(10):
            if rnd:
                k0, k1 = np.uint32(k0 + _W0), np.uint32(k1 + _W1)
            p0, p1 = _M0 * c0, _M1 * c2
            c0, c1, c2, c3 = ((p1 >> np.uint64(32)) ^ c1 ^ np.uint64(k0), p1 & _LO,
                              (p0 >> np.uint64(32)) ^ c3 ^ np.uint64(k1), p0 & _LO)
    return np.stack([c0, c1, c2, c3], axis=-1).astype(np.uint32)


def sample_bits(seed, step, rows):
    """uint64 bits of rows 0..rows-1 (or the given row indices) at (seed, step)."""
    r = np.arange(rows, dtype=np.uint64) if np.isscalar(rows) else np.asarray(rows, np.uint64)
    step, seed = int(step) % 2**64, int(seed) % 2**64
    ctr = np.stack([r & _LO, r >> np.uint64(32), np.full_like(r, step & 0xFFFFFFFF),
                    np.full_like(r, step >> 32)], axis=-1)
    o = philox4x32_10(ctr, (seed & 0xFFFFFFFF, seed >> 32)).astype(np.uint64)
    return o[..., 0] | (o[..., 1] << np.uint64(32))


def scaled(row, temperature):
    """s = float32(x) / float32(temperature), in float32 (the kernels' first step)."""
    return np.asarray(row).astype(np.float32) / np.float32(temperature)


def kept_probs(row, temperature=1.0, top_k=0, top_p=1.0):
    s = scaled(row, temperature).astype(np.float64)
    s[s == 0] = 0.0  # -0 and +0 are one value
    n = s.size
    m = s.max()
    keep = np.ones(n, bool)
    if 0 < top_k < n:
        keep &= s >= np.sort(s)[::-1][top_k - 1]
    with np.errstate(invalid="ignore"):
        w = np.where(s == m, 1.0, np.exp(s - m))
    w = np.where(keep, w, 0.0)
    if top_p < 1.0:
        # the largest value t whose kept mass at or above it reaches top_p (ties at t all kept)
        order = np.argsort(-np.where(keep, s, -np.inf), kind="stable")[: int(keep.sum())]
        c = np.cumsum(w[order])
        t = s[order][np.argmax(c >= top_p * c[-1] * (1 - 1e-12))]
        w = np.where(s >= t, w, 0.0)
    return w / w.sum()


def reference_tokens(logits, temperature=1.0, top_k=0, top_p=1.0, seed=0, step=0):
    logits = np.asarray(logits)
    bits = sample_bits(seed, step, logits.shape[0])
    u = bits.astype(np.float64) / 2.0**64
    tokens = np.empty(logits.shape[0], np.int64)
    margin = np.empty(logits.shape[0])
    for r in range(logits.shape[0]):
        c = np.cumsum(kept_probs(logits[r], temperature, top_k, top_p))
        target = u[r] * c[-1]
        j = int(np.searchsorted(c, target, side="right"))
        tokens[r] = min(j, c.size - 1)
        lo = c[j - 1] if j > 0 else 0.0
        margin[r] = min(abs(target - lo), abs(c[min(j, c.size - 1)] - target)) / c[-1]
    return tokens, margin
