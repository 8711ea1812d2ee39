"""Tensor parallelism of the model runner (issue 17), Megatron layout: which slice of every checkpoint tensor
rank r of W holds, and the logits gather. The engine (models/engine.py) loads the slices as it loads a whole
checkpoint (same canonical names, smaller shapes) and adds one all_reduce after the embedding and after each
row-parallel linear.

  shard = shard_checkpoint(config, tensors, rank, world_size)   # -> TPShard (tensors: the rank's slices)
  logits = gather_logits(group, local_logits, vocab)            # [N, vocab / W] per rank -> [N, vocab]

Layout (W = world size, r = rank; heads split contiguously, so q head j and its kv head j // (h / hkv) land
on the same rank):
- column-parallel, by heads: q/k/v (GPT-2 c_attn [d, 3d]: the q, k and v column blocks each cut; LLaMA q_proj,
  k_proj, v_proj rows and biases) -> h / W query heads and hkv / W kv heads per rank (both must divide);
- column-parallel: the MLP up projection (GPT-2 c_fc columns; LLaMA gate_proj and up_proj rows, each cut the
  same way, so the engine's fused [d, 2 ffn_r] w_gu keeps its gate | up halves); ffn is cut into W contiguous
  ranges of sizes differing by at most 1 (it need not divide);
- row-parallel: the attention output (c_proj / o_proj) and MLP down (c_proj / down_proj) take the matching
  input rows; each rank's product is a partial sum of the residual update: rank 0 adds bias and residual, the
  others write only their product, then one all_reduce of the residual stream [tokens, d];
- vocabulary-parallel: the embedding and the lm_head hold rows r * Vr .. (r + 1) * Vr - 1 (Vr = ceil(vocab / W);
  the last rank's rows past the vocabulary are zero padding). The embedding of rank r gives zero rows for ids
  outside its range (lc.embedding(..., offset=r * Vr)), so the all_reduce of the ranks' lookups is the lookup;
  each rank's logits [N, Vr] are all_gathered and laid out to [N, vocab] (padding dropped), identical on
  every rank, so argmax / sampling pick the same token everywhere;
- replicated: norms, GPT-2's position embedding (added on every rank after the token embedding's
  all_reduce), the row-parallel biases (added by rank 0 only).
Tests: tests/python/test_tp.py (shards concatenated give the checkpoint; sharded forward/generate equal the
unsharded model under run_threads).
"""
from __future__ import annotations

import dataclasses

import numpy as np

import lightning_core as lc

from .hf import GPT2Config, LlamaConfig


@dataclasses.dataclass
class TPShard:
    """Rank ``rank``'s part of a model split over ``world_size`` ranks."""
    rank: int
    world_size: int
    heads: int          # query heads on this rank
    kv_heads: int       # key/value heads on this rank
    ffn: tuple          # (lo, hi): the MLP intermediate columns on this rank
    vocab: int          # the whole vocabulary
    vocab_rows: int     # Vr: embedding / lm_head rows per rank (padding included)
    vocab_offset: int   # the first id of this rank's rows (rank * Vr)
    tensors: dict       # canonical name -> this rank's slice (ndarray)


def _int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _dims(config):
    """(heads, kv heads, head_dim, ffn, vocab, names of heads/kv heads in the config)."""
    if isinstance(config, GPT2Config):
        return config.n_head, config.n_head, config.head_dim, config.n_inner, config.vocab_size, ("n_head", "n_head")
    if isinstance(config, LlamaConfig):
        return (config.num_attention_heads, config.num_key_value_heads, config.head_dim, config.intermediate_size,
                config.vocab_size, ("num_attention_heads", "num_key_value_heads"))
    raise TypeError(f"tensor parallelism: config: expected GPT2Config or LlamaConfig, got {type(config).__name__}")


def check_world(config, world_size, rank=0):
    """ValueError unless ``config`` can be split over ``world_size`` ranks (heads and kv heads divisible, at
    least one MLP column per rank) and ``rank`` is one of them."""
    if not _int(world_size) or world_size < 1:
        raise ValueError(f"tensor parallelism: world size: expected an integer >= 1, got {world_size!r}")
    if not _int(rank) or not 0 <= rank < world_size:
        raise ValueError(f"tensor parallelism: rank: expected an integer in 0..{world_size - 1}, got {rank!r}")
    h, hkv, _, f, _, (hn, kvn) = _dims(config)
    if h % world_size or hkv % world_size:
        what = f"heads ({hn}) {h}" if hn == kvn else f"heads ({hn}) {h} and kv heads ({kvn}) {hkv}"
        raise ValueError(f"tensor parallelism: {what} must be divisible by the world size {world_size} (each rank "
                         f"takes whole heads)")
    if f < world_size:
        raise ValueError(f"tensor parallelism: the MLP width {f} is smaller than the world size {world_size}")


def split_range(n, world_size, rank):
    """(lo, hi) of rank's contiguous part of n items cut into world_size parts differing by at most 1."""
    base, extra = divmod(n, world_size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)


def vocab_rows(vocab, world_size):
    """Rows per rank of the vocabulary-parallel embedding / lm_head: ceil(vocab / world_size)."""
    return -(-vocab // world_size)


def _vocab_slice(a, lo, rows, vocab):
    """Rows lo..lo+rows-1 of a [vocab, d] table, zero rows past the vocabulary."""
    a = np.asarray(a)
    hi = min(lo + rows, vocab)
    part = a[lo:hi] if hi > lo else a[:0]
    if part.shape[0] == rows:
        return part
    pad = np.zeros((rows - part.shape[0],) + a.shape[1:], a.dtype)
    return np.concatenate([part, pad], axis=0)


def shard_checkpoint(config, tensors, rank, world_size):
    """Rank ``rank``'s TPShard of a checkpoint (config and {canonical name: ndarray} as
    models.load_checkpoint returns them). Slices of the mmap views stay views where they are row ranges;
    nothing of the checkpoint is modified."""
    check_world(config, world_size, rank)
    h, hkv, hd, f, v, _ = _dims(config)
    hl, kvl = h // world_size, hkv // world_size
    flo, fhi = split_range(f, world_size, rank)
    vr = vocab_rows(v, world_size)
    voff = rank * vr
    q = slice(rank * hl * hd, (rank + 1) * hl * hd)
    kv = slice(rank * kvl * hd, (rank + 1) * kvl * hd)
    ff = slice(flo, fhi)
    out = {}
    for name, a in tensors.items():
        a = np.asarray(a)
        if name in ("wte.weight", "model.embed_tokens.weight", "lm_head.weight"):
            out[name] = _vocab_slice(a, voff, vr, v)
        elif isinstance(config, GPT2Config):
            out[name] = _gpt2_part(name, a, config.n_embd, q, ff)
        else:
            out[name] = _llama_part(name, a, q, kv, ff)
    return TPShard(rank, world_size, hl, kvl, (flo, fhi), v, vr, voff, out)


def _gpt2_part(name, a, d, q, ff):
    if name.endswith("attn.c_attn.weight") or name.endswith("attn.c_attn.bias"):
        # columns q | k | v (Conv1D [in, out]), each block cut to this rank's heads
        blocks = [a[..., p * d + q.start:p * d + q.stop] for p in range(3)]
        return np.concatenate(blocks, axis=-1)
    if name.endswith("attn.c_proj.weight"):
        return a[q]                  # [d_r, d]: the rows of this rank's heads
    if name.endswith("mlp.c_fc.weight") or name.endswith("mlp.c_fc.bias"):
        return a[..., ff]
    if name.endswith("mlp.c_proj.weight"):
        return a[ff]
    return a                         # norms, wpe, row-parallel biases: replicated


def _llama_part(name, a, q, kv, ff):
    tail = name.rsplit(".", 2)
    kind = tail[-2] if len(tail) >= 2 else ""
    if kind == "q_proj":
        return a[q]                  # rows (nn.Linear [out, in]) and bias
    if kind in ("k_proj", "v_proj"):
        return a[kv]
    if kind == "o_proj" and name.endswith("weight"):
        return a[:, q]               # [d, q_r]
    if kind in ("gate_proj", "up_proj"):
        return a[ff]
    if kind == "down_proj" and name.endswith("weight"):
        return a[:, ff]
    return a


def check_group(group, device):
    """TypeError / ValueError unless ``group`` offers rank, world_size, device (== the model's) and the
    collectives the runner calls."""
    for attr in ("rank", "world_size", "all_reduce", "all_gather"):
        if not hasattr(group, attr):
            raise TypeError(f"CausalLM: group: expected a process group (rank, world_size, device, all_reduce, "
                            f"all_gather), got {type(group).__name__} without {attr!r}")
    gdev = getattr(group, "device", device)
    if isinstance(gdev, (int, np.integer)) and not isinstance(gdev, bool):
        gdev = "cuda"  # a GPU index (one GPU per rank)
    gdev = gdev if isinstance(gdev, str) else getattr(gdev, "type", str(gdev))
    if gdev.split(":")[0] != device:
        raise ValueError(f"CausalLM: group: expected a group on the model's device {device!r}, got one on {gdev!r}")


def capturable(group):
    """Whether the group's collectives can run inside lc.capture_graph (a ThreadGroup of world size > 1 copies
    through the host and cannot; the NCCL group can)."""
    return group is None or bool(getattr(group, "capturable", True))


def gather_logits(group, local, vocab):
    """Every rank's logits [N, Vr] -> [N, vocab] (the same on every rank): all_gather gives [W * N, Vr] in rank
    order, read as [N, W, Vr] (a strided view), made contiguous on the device, the padding past vocab dropped."""
    w = group.world_size
    if w == 1:
        return local  # Vr == vocab
    n, vr = int(local.shape[0]), int(local.shape[1])
    full = group.all_gather(local).view((n, w, vr), (vr, n * vr, 1), 0).contiguous()
    if w * vr != vocab:
        full = full.view((n, vocab), (w * vr, 1), 0).contiguous()
    return full.view((n, vocab), None, 0)
