"""KVCache: the key/value cache of a decoding transformer (lightning_core.KVCache).

k and v live in one tensor each, [batch, kv_heads, max_seq, head_dim], on the cache's device, allocated once;
each sequence's current length lives in device memory, so `lc.capture_graph` of one decode step (append +
attention) replays at every step's length. The C side is lc_kv_cache_* (src/ops/kv_cache.c).
Tests: tests/python/test_kv_cache.py.
"""
from __future__ import annotations

from . import _C


class KVCache:
    """KVCache(batch, kv_heads, max_seq, head_dim, dtype="float32", device="cpu").

    append(k_new, v_new): [batch, kv_heads, t, head_dim] written at each sequence's current length (refused
    with ValueError, nothing written, when a sequence would pass max_seq; inside a captured graph a replay
    that does not fit writes what fits and sets `overflowed`).
    attention(q, causal=True, scale=None, window=None): q [batch, heads, t, head_dim] (heads a multiple of
    kv_heads) against the cached keys, key_lengths = the current lengths; appending token by token and
    attending equals full causal attention. window (None or 0: none; else an int >= 1): the sliding window of
    scaled_dot_product_attention, query i at position p = i + length - t sees keys p - window < j <= p (the
    positions come from the device lengths, so a captured decode step stays exact past the window).
    attention_into(q, out, ...) writes into out.
    k_new, v_new (both or neither): append(k_new, v_new) first, in the same call (flash-attention's "attention
    with KV cache" form of a decode step; same checks, nothing appended when one fails, same results). On CUDA
    the tensor-core decode (float16/bfloat16, at most 16 query rows) does both in one kernel: it reads this
    step's keys from k_new / v_new, writes them into the cache and advances the lengths as it attends (one
    launch a layer fewer in a decode step); other cases run the append kernel, then the attention.
    positions (with k_new / v_new; rope_theta=10000.0, rotary_dim=None, rope_scaling=None as lc.rope takes them):
    q and k_new are rotated by the rotary embedding first, token i of sequence b at positions[b, i] (an integer
    [batch, t] or [t] ndarray, sequence or tensor), and the cache receives the rotated keys: the same results as
    lc.rope on q and on k_new, then this call without positions. On CUDA the tensor-core decode (float16 /
    bfloat16, t <= 16, head_dim 64 or 128 or less, rotary_dim a multiple of 16) rotates them in its launch (a LLaMA
    decode step's rope launches disappear); elsewhere rope runs first.
    """

    __slots__ = ("_cap", "batch", "kv_heads", "max_seq", "head_dim", "dtype", "device", "_k", "_v")

    def __init__(self, batch, kv_heads, max_seq, head_dim, dtype="float32", device="cpu"):
        self._cap = _C._kv_cache_new(batch, kv_heads, max_seq, head_dim, dtype, device)
        self.batch, self.kv_heads, self.max_seq, self.head_dim = int(batch), int(kv_heads), int(max_seq), int(head_dim)
        self._k, self._v = _C._kv_cache_storage(self._cap)
        self.dtype = self._k.dtype
        self.device = self._k.device

    def append(self, k_new, v_new) -> None:
        _C._kv_cache_append(self._cap, k_new, v_new)

    def attention(self, q, causal=True, scale=None, window=None, k_new=None, v_new=None, positions=None,
                  rope_theta=None, rotary_dim=None, rope_scaling=None):
        return _C._kv_cache_attention(self._cap, q, None, causal, scale, window, k_new, v_new, positions, rope_theta,
                                      rotary_dim, rope_scaling)

    def attention_into(self, q, out, causal=True, scale=None, window=None, k_new=None, v_new=None, positions=None,
                       rope_theta=None, rotary_dim=None, rope_scaling=None):
        return _C._kv_cache_attention(self._cap, q, out, causal, scale, window, k_new, v_new, positions, rope_theta,
                                      rotary_dim, rope_scaling)

    @property
    def lengths(self):
        """The current length of each sequence (int64 ndarray [batch]; waits for the device)."""
        return _C._kv_cache_lengths(self._cap)

    def set_lengths(self, lengths) -> None:
        """Sets each sequence's length (ints in 0..max_seq), e.g. to the true prompt lengths after a padded
        prefill: the next append of each sequence lands right after its own prompt."""
        _C._kv_cache_set_lengths(self._cap, lengths)

    @property
    def overflowed(self) -> bool:
        """True when a replayed append did not fit in max_seq (waits for the device)."""
        return _C._kv_cache_overflowed(self._cap)

    def reset(self) -> None:
        """Every length back to 0 (and the overflow flag); the storage stays where it is."""
        _C._kv_cache_reset(self._cap)

    @property
    def k(self):
        """The key storage, a Tensor [batch, kv_heads, max_seq, head_dim] (no copy)."""
        return self._k

    @property
    def v(self):
        """The value storage, a Tensor [batch, kv_heads, max_seq, head_dim] (no copy)."""
        return self._v

    def __repr__(self):
        return (f"KVCache(batch={self.batch}, kv_heads={self.kv_heads}, max_seq={self.max_seq}, "
                f"head_dim={self.head_dim}, dtype='{self.dtype}', device='{self.device}')")
