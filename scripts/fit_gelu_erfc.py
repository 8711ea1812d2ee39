"""Fits the polynomial of the CUDA 16-bit gelu (erf form) in src/backend/cuda/activation.cuh and checks the
whole formula in a float32 emulation. Φ(-|x|) = erfc(z)/2 with z = |x|/√2 is written as
h = t·2^(G(t) - x²·log2(e)/2), t = 1/(1 + c·|x|), c = float32(0.38/√2); G(t) = log2(erfc(z)/(2t)) + z²·log2(e) is
fitted by a degree-6 polynomial on t in [1/(1 + 13c), 1] (|x| <= 13: beyond, |gelu| < 1e-36 or Φ = 1), weighted
least squares iterated towards minimax. Prints the coefficients (C hex floats, c0 first), the fit error, the
emulated formula's largest relative error over [-13, 13], and the worst excess over the test tolerance of
tests/python/test_ops_elementwise.py::test_gelu_16bit_every_value for every finite float16 / bfloat16 value
(negative: inside). Usage: python scripts/fit_gelu_erfc.py (NumPy and ml_dtypes)."""
import math

import ml_dtypes
import numpy as np

F32 = np.float32
LOG2E = 1.0 / math.log(2.0)
ERFC = np.vectorize(math.erfc)


def fit(c, xmax=13.0, deg=6, n=4000, rounds=40):
    tmin = 1.0 / (1.0 + c * xmax)
    t = (tmin + 1) / 2 + (1 - tmin) / 2 * np.cos(np.pi * (np.arange(n) + 0.5) / n)  # Chebyshev nodes
    z = (1.0 / t - 1.0) / c / math.sqrt(2.0)
    g = np.log2(ERFC(z) / (2 * t)) + z * z * LOG2E
    w = np.ones_like(t)
    for _ in range(rounds):
        co = np.polynomial.polynomial.polyfit(t, g, deg, w=w)
        e = np.abs(np.polynomial.polynomial.polyval(t, co) - g)
        w = w * (1 + e / e.max()) ** 2
        w /= w.max()
    co32 = [F32(v) for v in co]
    tt = np.linspace(tmin, 1.0, 200001)
    zz = (1.0 / tt - 1.0) / c / math.sqrt(2.0)
    gg = np.log2(ERFC(zz) / (2 * tt)) + zz * zz * LOG2E
    return co32, float(np.max(np.abs(np.polynomial.polynomial.polyval(tt, [float(v) for v in co32]) - gg)))


def fma(a, b, c):  # float32 fma: the exact product and sum in float64, one rounding (double rounding negligible)
    return F32(np.float64(a) * np.float64(b) + np.float64(c))


def gelu(x, c, co):  # the kernel's operations, each rounded to float32; ex2 flushes below 2^-126
    x = np.asarray(x, F32)
    t = (F32(1) / fma(np.abs(x), c, F32(1))).astype(F32)
    g = np.full_like(x, co[-1])
    for v in co[-2::-1]:
        g = fma(g, t, v)
    a = fma((x * F32(-0.5 * LOG2E)).astype(F32), x, g)
    e = np.exp2(a.astype(np.float64)).astype(F32)
    e[a < -126] = 0
    h = (t * e).astype(F32)
    return (x * np.where(x < 0, h, (F32(1) - h).astype(F32))).astype(F32)


def ref(x):
    x = np.asarray(x, np.float64)
    return x * 0.5 * ERFC(-x / math.sqrt(2.0))


def main():
    c = F32(0.38 / math.sqrt(2.0))
    co, err = fit(float(c))
    print("c =", float(c).hex())
    print("coefficients c0..c6:", ", ".join(float(v).hex() for v in co))
    print(f"fit error (log2 units = relative in h): {err:.2e}")
    with np.errstate(over="ignore", invalid="ignore"):
        xs = np.linspace(-13, 13, 2000001).astype(F32)
        r, got = ref(xs), gelu(xs, c, co).astype(np.float64)
        m = np.abs(r) > 1e-36
        print(f"emulated max relative error on [-13, 13]: {np.max(np.abs(got[m] - r[m]) / np.abs(r[m])):.2e}")
        for name, dt, u, atol in (("bfloat16", ml_dtypes.bfloat16, 2.0**-8, 1e-36),
                                  ("float16", np.float16, 2.0**-11, 2.0**-25)):
            bits = np.arange(1 << 16, dtype=np.uint16).view(dt)
            x = bits[np.isfinite(bits.astype(np.float64))].astype(np.float64)
            want, out = ref(x), gelu(x.astype(F32), c, co).astype(dt).astype(np.float64)
            excess = np.abs(out - want) - ((u + 1e-4) * np.abs(want) + atol)
            print(f"{name}: worst excess over the test tolerance {excess.max():.3g} (x = {x[np.argmax(excess)]}), "
                  f"NaN {int(np.isnan(out).sum())}")


if __name__ == "__main__":
    main()
