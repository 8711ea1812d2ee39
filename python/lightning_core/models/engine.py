"""The model runner (issue 16): GPT-2 and LLaMA-family (Mistral, Qwen2) causal LMs from Hugging Face folders,
run through Lightning Core ops on the CPU or CUDA.

  model = lc.models.load(path, device="cpu", dtype=None)      # config.json + safetensors, weights uploaded once
  logits = model(ids)                                          # [B, S] ints -> [B, S, vocab] (full causal forward)
  logits = model.forward(ids, positions=None, cache=None)      # with a cache: the new tokens attend to it too
  out = model.generate(prompts, max_new_tokens, stop_ids=())   # greedy; prompts of different lengths in a batch

Every activation is an lc.Tensor on the model's device; the ops are the library's (embedding, the pre-norm
projections layer_norm_linear / rms_norm_linear (the norm fused into the linear after it: qkv, MLP up, lm_head),
linear with bias/GELU/residual epilogues, rope, scaled_dot_product_attention reading q/k/v as strided views
of the fused qkv projection and writing heads merged, silu_mul_linear (SwiGLU and the down projection with its
residual as one op), add, argmax) and the KV cache is lc.KVCache
(one per layer, lengths on the device). Weights are given to lc.linear as [in, out] (x @ W), q/k/v fused into
one projection, and stored (weight_layout) either so ("in_out": GPT-2's Conv1D weights as they are, LLaMA's
nn.Linear weights transposed once at load) or as [out, in] ("out_in": torch's layout, passed as transposed
views, which the CUDA decode GEMV streams with no split of k; a tied lm_head is then the embedding's own
array). Default: out_in on CUDA for 16-bit models, whose decode GEMVs then run the ring kernel (session 24, the
faster decode on the H100 for both architectures; otherwise, or with LC_GEMV_RING=0, out_in for GPT-2 and fused
decodes only), in_out on the CPU. With LC_MODELS_FUSED_DECODE=1, batch-1 decode on CUDA runs one
fused kernel a step where the model qualifies (models/fused.py: the whole step, embedding to argmax;
fused_decode / fused_reason); off by default (FUSED_DEFAULT: slower than the op-by-op step on the H100 so far).
A batch of prompts of different lengths is padded on the right for the prefill; each cache's lengths are then
set to the true prompt lengths, so every sequence's next token is written right after its own prompt and
attends only to its own keys.
Tensor parallelism (group=, a process group such as lc.distributed.ThreadGroup): the rank loads its shard
(models/tp.py: heads, MLP columns and vocabulary rows), and the forward adds one group.all_reduce of the
residual stream after the embedding and after each row-parallel linear (o_proj, MLP down: rank 0 adds bias
and residual, the others write their partial product), and gathers the vocabulary-parallel logits.
Tests: tests/python/test_engine.py (against testing.ref_models, the float64 reference forward),
tests/python/test_decode_program.py (the fused step), tests/python/test_tp.py (tensor parallelism).
"""
from __future__ import annotations

import os

import numpy as np

import lightning_core as lc

from . import fused as _fused
from . import tp as _tp
from .hf import GPT2Config, load_checkpoint


def _np_dtype(name):
    from ..dtypes import numpy_dtype
    return numpy_dtype(name)


class CausalLM:
    """A loaded model; see the module docstring. Attributes: config, device, dtype, arch ("gpt2" | "llama"),
    group (None, or the process group of tensor parallelism) and tp (None, or this rank's models.tp.TPShard)."""

    def __init__(self, config, tensors, device="cpu", dtype=None, group=None, weight_layout=None):
        if device not in ("cpu", "cuda"):
            raise ValueError(f"CausalLM: device: expected 'cpu' or 'cuda', got {device!r}")
        if weight_layout not in (None, "in_out", "out_in"):
            raise ValueError(f"CausalLM: weight_layout: expected None, 'in_out' or 'out_in', got {weight_layout!r}")
        self.config, self.device = config, device
        self.group, self.tp = group, None
        if group is not None:  # this rank's slices of the checkpoint, under the same names
            _tp.check_group(group, device)
            self.tp = _tp.shard_checkpoint(config, tensors, group.rank, group.world_size)
            tensors = self.tp.tensors
        first = next(iter(tensors.values()))
        self.dtype = dtype or (first.dtype.name if first.dtype.name in ("float32", "float16", "bfloat16") else "float32")
        if self.dtype not in ("float32", "float16", "bfloat16"):
            raise ValueError(f"CausalLM: dtype: expected float32, float16 or bfloat16, got {self.dtype!r}")
        self.arch = "gpt2" if isinstance(config, GPT2Config) else "llama"
        # Batch-1 decode on CUDA as one fused kernel a step (models/fused.py) where the model qualifies (16-bit, no
        # tensor parallelism, dims the kernel takes): LC_MODELS_FUSED_DECODE=1 on, 0 off (default FUSED_DEFAULT)
        fused_env = os.environ.get("LC_MODELS_FUSED_DECODE", FUSED_DEFAULT)
        if fused_env not in ("0", "1"):
            raise ValueError(f"CausalLM: LC_MODELS_FUSED_DECODE: expected '0' or '1', got {fused_env!r}")
        dims_ok = self.arch == "gpt2" or _fused.dims_unsupported(config.head_dim, (
            config.hidden_size, config.num_attention_heads * config.head_dim, config.intermediate_size)) is None
        fused_wanted = fused_env == "1" and device == "cuda" and group is None \
            and self.dtype in ("bfloat16", "float16") and dims_ok
        # How the linears' weights are stored (see _w): on CUDA out_in, whose 16-bit decode GEMVs are the ring
        # kernel (gemv_ring_cuda.cu), for a 16-bit model when LC_GEMV_RING is on (1; unset: RING_DEFAULT; the C
        # side reads the same variable at each launch), else the layout measured faster for the architecture
        # without it (session 18: GPT-2 out_in 0.41 -> 0.37 ms a token; LLaMA 1.1B in_out, 1.40 against 1.60,
        # unless the fused step, which streams [out, in] rows, runs the decode); in_out on the CPU (out_in there
        # gathers a copy at every call)
        ring = os.environ.get("LC_GEMV_RING", RING_DEFAULT) != "0" and self.dtype in ("bfloat16", "float16")
        self.weight_layout = weight_layout or (
            "out_in" if device == "cuda" and (ring or self.arch == "gpt2" or fused_wanted) else "in_out")
        self.window = None  # the sliding window (LLaMA-family configs that set one)
        # CUDA decode: MiB of the weights used after a layer's attention (o_proj, the MLP's, the next layer's qkv:
        # whole tensors in order of use while they fit, then the first part of the next one) requested into L2 by
        # one lc.prefetch before the attention, so they stream while it runs (it reads little at batch 1); 0: off,
        # the default: on the H100 it measured slower (session 21: GPT-2 B=1 0.376 -> 0.44 ms a step, LLaMA 1.1B
        # 1.41 -> 1.48+; the prefetch kernel is a node of the chain that the attention waits for). An A/B knob:
        # LC_MODELS_PREFETCH_MB overrides. Set it before the first generate (captured graphs keep their plan).
        try:
            self.prefetch_mb = max(0.0, float(os.environ.get("LC_MODELS_PREFETCH_MB", "0")))
        except ValueError:
            raise ValueError("CausalLM: LC_MODELS_PREFETCH_MB: expected a number of MiB, got "
                             f"{os.environ['LC_MODELS_PREFETCH_MB']!r}") from None
        # LLaMA decode steps (S = 1, with a KV cache) hand the rotary embedding to the cache's attention call
        # (KVCache.attention(positions=...): on CUDA rotated inside the tensor-core decode's launch, one node a layer
        # fewer); LC_MODELS_ROPE_FUSE=0 keeps the rope op before it (an A/B knob, read at load).
        self.rope_fused = os.environ.get("LC_MODELS_ROPE_FUSE", "1") != "0"
        # Greedy steps take the next token from the final norm + lm_head call itself (argmax_out=: on CUDA decode
        # shapes reduced by the GEMV's blocks as they write the logits, one node a step fewer);
        # LC_MODELS_ARGMAX_FUSE=0 runs lc.argmax after it (an A/B knob, read at load).
        self.argmax_fused = os.environ.get("LC_MODELS_ARGMAX_FUSE", "1") != "0"
        # GPT-2's token and position rows in one op (lc.embedding(pos_weight=, positions=): one node for three);
        # LC_MODELS_EMBED_FUSE=0 keeps the two lookups and their add (an A/B knob, read at load).
        self.embed_fused = os.environ.get("LC_MODELS_EMBED_FUSE", "1") != "0"
        self._np = _np_dtype(self.dtype)
        if self.arch == "gpt2":
            self._load_gpt2(tensors)
        else:
            self._load_llama(tensors)
        if self.tp is not None:
            self.h, self.hkv = self.tp.heads, self.tp.kv_heads  # this rank's heads
        # why batch-1 decode does not run fused (None: it does; generate's decode graphs of batch 1 use it)
        self.fused_reason = "LC_MODELS_FUSED_DECODE=0" if fused_env == "0" else _fused.unsupported(self)
        self.fused_decode = self.fused_reason is None

    # ---- weights ------------------------------------------------------------------------------------
    def _t(self, a):
        """A host array -> a Tensor of the model's dtype on its device (converted on the host, uploaded once)."""
        a = np.ascontiguousarray(a)
        if a.dtype != self._np:
            a = lc.cast(a.astype(np.float32) if a.dtype == np.float64 else a, self.dtype)
        return lc.Tensor(a, device=self.device, dtype=self.dtype)

    def _w(self, a):
        """A weight [in, out] (x @ W, the layout lc.linear reads) on the model's device: stored so ("in_out"), or
        ("out_in") as its transpose [out, in] (torch's Linear layout: each output's weights one contiguous row,
        which the CUDA decode GEMV streams whole with no split of k) and returned as the [in, out] view of that
        array, which the CUDA linears read in place."""
        if self.weight_layout == "in_out":
            return self._t(a)
        return lc.transpose(self._t(np.asarray(a).T), 0, 1)

    def _w_lin(self, *parts):
        """nn.Linear weights [out_i, in] (LLaMA's checkpoint layout) stacked along out: the [in, sum out_i]
        weight of _w, with at most one host copy in either layout (out_in concatenates the rows as they are)."""
        if self.weight_layout == "in_out":
            return self._t(np.concatenate([np.asarray(a).T for a in parts], axis=1))
        a = np.asarray(parts[0]) if len(parts) == 1 else np.concatenate([np.asarray(a) for a in parts], axis=0)
        return lc.transpose(self._t(a), 0, 1)

    def _load_gpt2(self, t):
        c = self.config
        self.d, self.h, self.hkv = c.n_embd, c.n_head, c.n_head
        self.hd, self.eps, self.vocab = c.n_embd // c.n_head, c.layer_norm_epsilon, c.vocab_size
        if c.activation_function not in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu"):
            raise ValueError(f"CausalLM: activation_function: expected a GELU, got {c.activation_function!r}")
        self.act = "gelu" if c.activation_function == "gelu" else "gelu_tanh"
        self.wte, self.wpe = self._t(t["wte.weight"]), self._t(t["wpe.weight"])
        self.layers = []
        for i in range(c.n_layer):
            p = f"h.{i}."
            self.layers.append({k: (self._w if k.startswith("w_") else self._t)(t[p + n]) for k, n in (
                ("ln1_w", "ln_1.weight"), ("ln1_b", "ln_1.bias"), ("w_qkv", "attn.c_attn.weight"),
                ("b_qkv", "attn.c_attn.bias"), ("w_o", "attn.c_proj.weight"), ("b_o", "attn.c_proj.bias"),
                ("ln2_w", "ln_2.weight"), ("ln2_b", "ln_2.bias"), ("w_fc", "mlp.c_fc.weight"), ("b_fc", "mlp.c_fc.bias"),
                ("w_proj", "mlp.c_proj.weight"), ("b_proj", "mlp.c_proj.bias"))})
        self.lnf_w, self.lnf_b = self._t(t["ln_f.weight"]), self._t(t["ln_f.bias"])
        self.lm_head = self._head(t, "wte.weight", self.wte)

    def _load_llama(self, t):
        c = self.config
        self.d, self.h, self.hkv, self.hd = c.hidden_size, c.num_attention_heads, c.num_key_value_heads, c.head_dim
        self.eps, self.vocab = c.rms_norm_eps, c.vocab_size
        # Sliding window (Mistral; Qwen2 with use_sliding_window): query position p sees keys at p - window < j
        # <= p, sdpa's / KVCache.attention's `window` (positions from the key index, or the cache's device
        # lengths: exact with a cache and in a replayed decode graph)
        self.window = c.sliding_window
        rs = c.rope_scaling
        self.rope_scaling = None if rs is None else {k: v for k, v in (
            ("rope_type", rs.rope_type), ("factor", rs.factor), ("low_freq_factor", rs.low_freq_factor),
            ("high_freq_factor", rs.high_freq_factor),
            ("original_max_position_embeddings", rs.original_max_position_embeddings)) if v is not None}
        self.theta = c.rope_theta
        self.embed = self._t(t["model.embed_tokens.weight"])
        self.layers = []
        for i in range(c.num_hidden_layers):
            p = f"model.layers.{i}."
            L = {"in_w": self._t(t[p + "input_layernorm.weight"]),
                 "w_qkv": self._w_lin(*(t[p + f"self_attn.{n}_proj.weight"] for n in ("q", "k", "v"))),
                 "w_o": self._w_lin(t[p + "self_attn.o_proj.weight"]),
                 "post_w": self._t(t[p + "post_attention_layernorm.weight"])}
            L["b_qkv"] = self._t(np.concatenate([np.asarray(t[p + f"self_attn.{n}_proj.bias"]) for n in "qkv"])) \
                if c.attention_bias else None
            L["b_o"] = self._t(t[p + "self_attn.o_proj.bias"]) if c.o_proj_bias else None
            # gate and up as one [d, 2 ffn] weight: one GEMM (one weight stream in a decode step), its output
            # [gate | up] read by silu_mul_linear (silu(gate) * up, then the down projection)
            L["w_gu"] = self._w_lin(*(t[p + f"mlp.{n}_proj.weight"] for n in ("gate", "up")))
            L["b_gu"] = self._t(np.concatenate([np.asarray(t[p + f"mlp.{n}_proj.bias"]) for n in ("gate", "up")])) \
                if c.mlp_bias else None
            L["w_down"] = self._w_lin(t[p + "mlp.down_proj.weight"])
            L["b_down"] = self._t(t[p + "mlp.down_proj.bias"]) if c.mlp_bias else None
            self.layers.append(L)
        self.norm_w = self._t(t["model.norm.weight"])
        self.lm_head = self._head(t, "model.embed_tokens.weight", self.embed)

    def _head(self, t, embed_name, embed):
        """The lm_head [d, vocab] (x @ W). Tied to the embedding [vocab, d] with weight_layout "out_in": the
        transposed view of the embedding's own array (one copy of the weights); otherwise from its [vocab, d]
        checkpoint entry."""
        head = t[embed_name] if self.config.tie_word_embeddings else t["lm_head.weight"]
        if os.environ.get("LC_MODELS_HEAD_LAYOUT") == "in_out":  # developer A/B (design.md): a [d, vocab] copy
            return self._t(np.asarray(head).T)
        if self.config.tie_word_embeddings and self.weight_layout == "out_in":
            return lc.transpose(embed, 0, 1)
        return self._w_lin(head)

    # ---- forward ------------------------------------------------------------------------------------
    def new_cache(self, batch, max_seq):
        """One lc.KVCache per layer ([batch, kv_heads, max_seq, head_dim], the model's dtype and device)."""
        return [lc.KVCache(batch, self.hkv, max_seq, self.hd, dtype=self.dtype, device=self.device)
                for _ in self.layers]

    def _ids(self, ids, name):
        a = np.asarray(ids.numpy() if hasattr(ids, "numpy") else ids)
        if a.ndim == 1:
            a = a[None]
        if a.ndim != 2 or not np.issubdtype(a.dtype, np.integer) or a.size == 0:
            raise ValueError(f"CausalLM.forward: {name}: expected non-empty integer [batch, seq] (or [seq]), "
                             f"got {a.dtype} {a.shape}")
        return a.astype(np.int64)

    def __call__(self, ids, positions=None, cache=None):
        return self.forward(ids, positions, cache)

    def forward(self, ids, positions=None, cache=None):
        """Logits [B, S, vocab] (a Tensor on the model's device) of ids [B, S]; positions default to 0..S-1
        (with a cache: each sequence's current length onward). With a cache the tokens are appended to it
        and attend to everything it holds (causally)."""
        x_ids = self._ids(ids, "ids")
        b, s = x_ids.shape
        if positions is None:
            start = cache[0].lengths[:, None] if cache is not None else np.zeros((b, 1), np.int64)
            pos = start + np.arange(s)[None, :]
        else:
            pos = np.broadcast_to(self._ids(positions, "positions"), (b, s))
        if np.any(x_ids < 0) or np.any(x_ids >= self.vocab):
            raise ValueError(f"CausalLM.forward: ids: expected values in 0..{self.vocab - 1}")
        x = self._hidden(x_ids, np.ascontiguousarray(pos), cache)
        return self._logits(x).view((b, s, self.vocab), None, 0)

    # ---- tensor parallelism (no-ops without a group) -------------------------------------------------
    def _lead(self, v):
        """v on rank 0 (or without a group), else None: the bias and residual of a row-parallel linear."""
        return v if self.tp is None or self.tp.rank == 0 else None

    def _all_reduce(self, x):
        return x if self.group is None else self.group.all_reduce(x)

    def _embed(self, w, ids_t):
        """The token embedding: a vocabulary shard's lookup (zero rows for other ranks' ids) under a group."""
        if self.tp is None:
            return lc.embedding(w, ids_t, self.device)
        return lc.embedding(w, ids_t, self.device, offset=self.tp.vocab_offset)

    def _logits(self, x, argmax_out=None):
        """Logits [N, vocab] of residual-stream rows x [N, d]: the final norm fused into lm_head (gathered from
        the ranks under a group). argmax_out (int64 [N], a device tensor on CUDA) receives each row's argmax: from
        the lm_head call itself (argmax_fused, one group), else lc.argmax_into after it."""
        fold = argmax_out if self.argmax_fused and self.group is None else None
        if self.arch == "gpt2":
            logits = lc.layer_norm_linear(x, self.lm_head, None, self.lnf_w, self.lnf_b, self.eps, "none", self.device,
                                          fold)
        else:
            logits = lc.rms_norm_linear(x, self.lm_head, None, self.norm_w, self.eps, "none", self.device, fold)
        if self.group is not None:
            logits = _tp.gather_logits(self.group, logits, self.vocab)
        if argmax_out is not None and fold is None:
            lc.argmax_into(logits, argmax_out, self.device)
        return logits

    def _dev_ints(self, a):
        return lc.Tensor(np.ascontiguousarray(a, np.int64), device=self.device)

    def _hidden(self, ids, pos, cache):
        """The residual stream [B*S, d] after the last layer (before the final norm, which _logits applies) of
        ids [B, S] at positions pos [B, S] (host arrays)."""
        b, s = ids.shape
        return self._hidden_t(self._dev_ints(ids.reshape(-1)), self._dev_ints(pos), b, s, cache)

    def _buffer(self, shape):
        """A scratch Tensor of the model's dtype, made once per shape and reused (so that a captured decode
        step allocates nothing)."""
        bufs = self.__dict__.setdefault("_bufs", {})
        if shape not in bufs:
            bufs[shape] = lc.Tensor(shape, device=self.device, dtype=self.dtype)
        return bufs[shape]

    def _hidden_t(self, ids_t, pos_t, b, s, cache):
        """Same from device tensors: ids_t int64 [B*S], pos_t int64 [B, S] (nothing read from the host, so
        a decode step can be captured)."""
        n, dev = b * s, self.device
        if self.arch == "gpt2":
            pos = pos_t.view((n,), None, pos_t.offset)  # pos_t may be a view
            if self.embed_fused and self.tp is None:
                x = lc.embedding(self.wte, ids_t, dev, pos_weight=self.wpe, positions=pos)
            else:  # under a group the token rows are a shard's, summed over the ranks before the positions
                x = lc.add(self._all_reduce(self._embed(self.wte, ids_t)), lc.embedding(self.wpe, pos, dev), dev)
        else:
            x = self._all_reduce(self._embed(self.embed, ids_t))
        for i, L in enumerate(self.layers):
            c = cache[i] if cache is not None else None
            att = self._attention(x, L, b, s, pos_t, c)
            # x += o_proj(att) (+ the other ranks' parts under tensor parallelism)
            lc.linear_into(att, L["w_o"], x, self._lead(L["b_o"]), "none", dev, residual=self._lead(x))
            self._all_reduce(x)
            if self.arch == "gpt2":
                hmid = lc.layer_norm_linear(x, L["w_fc"], L["b_fc"], L["ln2_w"], L["ln2_b"], self.eps, self.act, dev)
                lc.linear_into(hmid, L["w_proj"], x, self._lead(L["b_proj"]), "none", dev, residual=self._lead(x))
            else:
                gu = lc.rms_norm_linear(x, L["w_gu"], L["b_gu"], L["post_w"], self.eps, "none", dev)  # [B*S, 2 ffn]
                # x += down(silu(gate) * up): one op (on CUDA decode one GEMV launch computing silu(g)*u as it
                # stages gu; under tensor parallelism gu is this rank's [gate shard | up shard])
                lc.silu_mul_linear_into(gu, L["w_down"], x, self._lead(L["b_down"]), "none", dev,
                                        residual=self._lead(x))
            self._all_reduce(x)
        return x

    def _attention(self, x, L, b, s, pos_t, cache):
        """Self-attention of the residual stream x [B*S, d]: the input norm fused into the qkv projection, read
        as [B, H, S, hd] views (no copies), RoPE (LLaMA), the KV cache or plain causal attention, the heads
        written merged as [B*S, H*hd]."""
        dev, h, hkv, hd = self.device, self.h, self.hkv, self.hd
        if self.arch == "gpt2":  # [B*S, (h + 2 hkv) hd], contiguous
            qkv = lc.layer_norm_linear(x, L["w_qkv"], L["b_qkv"], L["ln1_w"], L["ln1_b"], self.eps, "none", dev)
        else:
            qkv = lc.rms_norm_linear(x, L["w_qkv"], L["b_qkv"], L["in_w"], self.eps, "none", dev)
        if cache is not None and s == 1 and dev == "cuda" and self.prefetch_mb > 0:
            lc.prefetch(*self._prefetch_list(L))  # after the qkv GEMV: fills the DRAM time of rope and attention
        cols = (h + 2 * hkv) * hd
        q = qkv.view((b, h, s, hd), (s * cols, hd, cols, 1), 0)
        k = qkv.view((b, hkv, s, hd), (s * cols, hd, cols, 1), h * hd)
        v = qkv.view((b, hkv, s, hd), (s * cols, hd, cols, 1), (h + hkv) * hd)
        # a decode step's rope goes into the cache's attention call (rotated in its kernel on CUDA at 16 bits; a
        # float32 CUDA cache would run the rope op twice there, on q and on k, so it keeps the one call below)
        rope = {}
        if (self.arch == "llama" and cache is not None and s == 1 and self.rope_fused
                and (dev != "cuda" or self.dtype in ("bfloat16", "float16"))):
            rope = dict(positions=pos_t, rope_theta=self.theta, rope_scaling=self.rope_scaling)
        elif self.arch == "llama":  # q and k heads are adjacent in a qkv row: one rope call rotates both
            qk = lc.rope(qkv.view((b, h + hkv, s, hd), (s * cols, hd, cols, 1), 0), pos_t, self.theta, None,
                         self.rope_scaling, dev)  # contiguous [B, h + hkv, S, hd]
            q = qk.view((b, h, s, hd), ((h + hkv) * s * hd, s * hd, hd, 1), 0)
            k = qk.view((b, hkv, s, hd), ((h + hkv) * s * hd, s * hd, hd, 1), h * s * hd)
        out = self._buffer((b * s, h * hd))  # consumed by the output projection before the next layer writes it
        merged = out.view((b, h, s, hd), (s * h * hd, hd, h * hd, 1), 0)
        if cache is not None:  # (rotate,) append k, v, then attend (one kernel on CUDA decode)
            cache.attention_into(q, merged, causal=True, window=self.window, k_new=k, v_new=v, **rope)
        else:
            lc.scaled_dot_product_attention_into(q, k, v, merged, causal=True, device=dev, window=self.window)
        return out

    PREFETCH_MIN_PART = 2 ** 20  # bytes: the smallest first part of a weight _prefetch_list takes

    def _prefetch_list(self, L):
        """The weights lc.prefetch requests during layer L's decode attention: those used next (o_proj, the MLP's,
        the next layer's qkv), whole tensors in order while their sum fits prefetch_mb MiB, then the lowest addresses
        of the next one (a flat view of its span, from 1 MiB; the GEMVs stream each weight from its start in both
        layouts' plans, so a prefix spares DRAM bytes either way); cached per budget."""
        key = ("_pf", self.prefetch_mb)
        plans = self.__dict__.get("_pf_plans")
        if plans is None or plans[0] != key:
            mlp = ("w_fc", "w_proj") if self.arch == "gpt2" else ("w_gu", "w_down")
            order = [L_[n] for L_ in self.layers for n in (("w_qkv", "w_o") + mlp)]
            budget, per = self.prefetch_mb * 2.0 ** 20, {}
            for i, L_ in enumerate(self.layers):
                start, got, used = 4 * i + 1, [], 0  # w_o of layer i, then on
                for t in order[start:start + 4]:
                    if used + t.nbytes > budget:  # the first part of the one that does not fit, from 1 MiB
                        es = t.nbytes // t.numel
                        part = int((budget - used) // es) // 4096 * 4096
                        if part > 0 and part * es >= self.PREFETCH_MIN_PART:
                            got.append(t.view((part,), None, t.offset))  # its lowest addresses
                        break
                    got.append(t)
                    used += t.nbytes
                per[id(L_)] = got
            plans = self._pf_plans = (key, per)
        return plans[1][id(L)]

    # ---- generation ---------------------------------------------------------------------------------
    def generate(self, prompts, max_new_tokens, stop_ids=(), stream=None, temperature=0.0, top_k=0, top_p=1.0, seed=0,
                 timings=None, graph=None, graph_steps=None):
        """Generation for one prompt (a list of ids) or a batch (a list of lists, lengths may differ): the
        prefill in one forward pass, then one token per step through the KV caches. temperature 0 is greedy
        (argmax); above 0 the next token is drawn by lc.sample (top_k, top_p, seeded: the same seed gives the
        same tokens). Returns prompt + new tokens (a list, or a list of lists for a batch); a sequence stops
        after emitting a token in stop_ids. stream(step, tokens) is called after every step with the new token
        of each sequence (it must not write the model's weights: the decode steps run under lc.static_weights).
        timings (a dict, optional) receives prefill_ms, decode_ms and decode_steps (the steps run).
        graph (default: True on CUDA): the decode steps run as replays of a CUDA graph captured once for this
        batch (lc.capture_graph over the same ops: ids and positions in device tensors, the caches' lengths on
        the device, each step's tokens written where the next step reads them); by default on the CPU the
        same steps run without capture; graph=False runs each step on its own (host ids in, token out).
        graph_steps (default GRAPH_STEPS, 8): decode steps a run (a replay): their positions go up in one
        upload and their tokens come back in one download, so the host's turnaround (upload, launch,
        download, this loop) is paid once per graph_steps tokens, not every token; stream() then sees the
        tokens in bursts. After a stop id ends every sequence, the rest of that run's steps are discarded
        (computed, not returned)."""
        if temperature < 0:
            raise ValueError(f"CausalLM.generate: temperature: expected >= 0 (0: greedy), got {temperature}")
        self._sampling = (float(temperature), int(top_k), float(top_p), int(seed))
        single = len(prompts) > 0 and np.ndim(prompts[0]) == 0
        batch = [list(map(int, prompts))] if single else [list(map(int, p)) for p in prompts]
        if not batch or any(len(p) == 0 for p in batch):
            raise ValueError("CausalLM.generate: prompts: expected non-empty prompts")
        if max_new_tokens < 0:
            raise ValueError(f"CausalLM.generate: max_new_tokens: expected >= 0, got {max_new_tokens}")
        graph_steps = GRAPH_STEPS if graph_steps is None else graph_steps
        if isinstance(graph_steps, bool) or not isinstance(graph_steps, (int, np.integer)) \
                or not 1 <= graph_steps <= MAX_GRAPH_STEPS:
            raise ValueError(f"CausalLM.generate: graph_steps: expected an integer in 1..{MAX_GRAPH_STEPS}, "
                             f"got {graph_steps!r}")
        b, lens = len(batch), np.array([len(p) for p in batch], np.int64)
        s = int(lens.max())
        out = [list(p) for p in batch]
        if max_new_tokens == 0:
            return out[0] if single else out
        ids = np.zeros((b, s), np.int64)
        for i, p in enumerate(batch):
            ids[i, :len(p)] = p
        import time
        use_graph = self.device == "cuda" and _tp.capturable(self.group) if graph is None else bool(graph)
        if use_graph and self.device != "cuda":
            raise ValueError("CausalLM.generate: graph: CUDA graphs need device='cuda'")
        if use_graph and not _tp.capturable(self.group):
            raise ValueError("CausalLM.generate: graph: this group's collectives cannot be captured (a ThreadGroup "
                             "of world size > 1 copies through the host); use graph=False")
        dec = None
        if use_graph:  # one captured decode step per (batch, length bucket, sampling settings), kept across calls
            bucket = -(-(s + max_new_tokens) // 256) * 256
            key = (b, bucket, self._sampling)
            graphs = self.__dict__.setdefault("_graphs", {})
            if key not in graphs:
                cache_g = self.new_cache(b, bucket)
                graphs[key] = (_DecodeGraph(self, b, cache_g, MAX_GRAPH_STEPS, capture=True), cache_g)
            dec, cache = graphs[key]
            for c in cache:
                c.reset()
        else:
            cache = self.new_cache(b, s + max_new_tokens)
            if graph is None:  # the CPU (or a group that cannot be captured): the same steps, run as they are
                dec = _DecodeGraph(self, b, cache, int(graph_steps), capture=False)
        self._draws = 0
        t0 = time.perf_counter()
        x = self._hidden(ids, np.broadcast_to(np.arange(s), (b, s)).copy(), cache)
        for c in cache:
            c.set_lengths(lens)
        last = lc.embedding(x, self._dev_ints(np.arange(b) * s + lens - 1), self.device)  # each prompt's last row
        nxt = self._next(last)  # a host read: the prefill has finished
        t1 = time.perf_counter()
        steps = 0
        if dec is not None:
            dec.begin(self._draws)
        done = np.zeros(b, bool)
        stops = set(int(t) for t in stop_ids)
        # the weights are not written after the prefill's host read: the decode GEMVs may load them before the
        # kernel ahead of them ends (lc.static_weights; a graph captured here keeps it)
        with lc.static_weights():
            ahead = []  # tokens of decode steps already run (a graph replay runs up to graph_steps), not yet emitted
            for step in range(max_new_tokens):
                for i in range(b):
                    if not done[i]:
                        out[i].append(int(nxt[i]))
                        done[i] = int(nxt[i]) in stops
                if stream is not None:
                    stream(step, [int(t) for t in nxt])
                if done.all() or step == max_new_tokens - 1:
                    break
                if not ahead:
                    if dec is not None:  # decode steps step + 1 .. step + n at positions lens + step, ..
                        n = min(int(graph_steps), max_new_tokens - 1 - step)
                        ahead = list(dec.run(nxt, lens + step, n))
                    else:
                        ahead = [self._next(self._hidden(nxt[:, None], (lens + step)[:, None], cache))]
                    steps += len(ahead)
                nxt = ahead.pop(0)
        if timings is not None:
            timings.update(prefill_ms=(t1 - t0) * 1e3, decode_ms=(time.perf_counter() - t1) * 1e3, decode_steps=steps)
        return out[0] if single else out

    def _next(self, x):
        """Next tokens (int64 ndarray [B]) from residual-stream rows x [B, d] (before the final norm): argmax, or
        lc.sample with the settings of the current generate call (each draw uses the next counter value of its
        seed)."""
        logits = self._logits(x)
        temperature, top_k, top_p, seed = getattr(self, "_sampling", (0.0, 0, 1.0, 0))
        if temperature == 0.0:
            t = lc.argmax(logits, self.device)
        else:
            counter = lc.Tensor(np.array([self._draws], np.int64), device=self.device)
            t = lc.sample(logits, temperature, top_k, top_p, seed, counter, self.device)
            self._draws += 1
        return t.numpy() if hasattr(t, "numpy") else np.asarray(t)


# LC_MODELS_FUSED_DECODE's default: "0" until the fused step measures faster than the op-by-op step on the card
# (session 22, H100: GPT-2 124M 0.51 against 0.38 ms a step, LLaMA 1.1B 1.46 against 1.40; docs/benchmarks.md)
FUSED_DEFAULT = "0"
# LC_GEMV_RING unset: the ring GEMV on ("1") or off ("0"); a copy of gemv_ring_cuda.cu's GR_DEFAULT, which
# decides the kernel; this one decides the layout that lets the kernel run (out_in). On since session 24 (H100:
# GPT-2 124M B=1 0.38 -> 0.32 ms a step, LLaMA 1.1B 1.40 -> 1.21; docs/benchmarks.md).
RING_DEFAULT = "1"
GRAPH_STEPS = 8  # generate's default decode steps a graph replay
MAX_GRAPH_STEPS = 64  # the most it takes (the size of a kept graph's io tensor)


class _DecodeGraph:
    """Decode steps of a batch in runs of n (1..max_steps), on CUDA as captured graphs (capture: one per n).
    One int64 device tensor io holds every step's positions (pos j: [B, 1] at j*B) and tokens (tok j: [B] at
    (max_steps + j)*B): step j reads tok j and pos j and writes its next tokens into tok j + 1 (argmax, or
    sample with the device counter), the caches appended and attended at their device lengths. run()
    uploads the positions and the input tokens in one copy, runs (replays) the n steps, and downloads the n
    new token rows in one read. With capture, the first run ever goes eagerly through the same function (it
    makes the scratch buffers and warms the GEMM heuristics); each n is captured at its first later use and
    kept, with the caches, across generate calls of the same batch, length bucket and sampling settings
    (reset per call). Without capture (the CPU) every run calls the function."""

    def __init__(self, model, b, cache, max_steps, capture):
        self.m, self.b, self.cache, self.max_steps, self.capture = model, b, cache, max_steps, capture
        self.io = lc.Tensor(np.zeros((2 * max_steps + 1) * b, np.int64), device=model.device)
        self.host = np.zeros((2 * max_steps + 1) * b, np.int64)
        self.sampling = getattr(model, "_sampling", (0.0, 0, 1.0, 0))
        self.counter = lc.Tensor(np.zeros(1, np.int64), device=model.device) if self.sampling[0] > 0 else None
        self.graphs = {}
        self.calls = 0
        # batch 1: each step one fused kernel (models/fused.py); the logits it writes only when sampling needs them
        self.fused = _fused.FusedDecode(model, cache) if b == 1 and model.fused_decode else None
        self.logits = lc.Tensor((1, model.vocab), device=model.device, dtype="float32") \
            if self.fused is not None and self.sampling[0] > 0 else None

    def begin(self, draws):
        """A new generate call: the sampling counter restarts at `draws` (so the same seed gives the same tokens
        on every call)."""
        if self.counter is not None:
            self.counter.copy_from(np.array([draws], np.int64))

    def _tok(self, j):
        return self.io.view((self.b,), None, (self.max_steps + j) * self.b)

    def _run(self, n):
        m, b = self.m, self.b
        t, k, p, seed = self.sampling
        for j in range(n):
            if self.fused is not None:  # argmax in the kernel, or its float32 logits sampled
                self.fused.step(self._tok(j), self._tok(j + 1) if t == 0.0 else None, self.logits)
                if t != 0.0:
                    lc.sample_into(self.logits, self._tok(j + 1), t, k, p, seed, self.counter, m.device)
                continue
            x = m._hidden_t(self._tok(j), self.io.view((b, 1), None, j * b), b, 1, self.cache)
            if t == 0.0:
                m._logits(x, self._tok(j + 1))
            else:
                lc.sample_into(m._logits(x), self._tok(j + 1), t, k, p, seed, self.counter, m.device)

    def run(self, ids, pos0, n):
        """n decode steps from tokens ids [B] at positions pos0 [B] (then pos0 + 1, ...): their tokens [n, B]."""
        b, ms = self.b, self.max_steps
        self.host[:n * b] = (np.asarray(pos0, np.int64)[None, :] + np.arange(n)[:, None]).reshape(-1)
        self.host[ms * b:(ms + 1) * b] = ids
        self.io.copy_from(self.host)
        if self.calls == 0 or not self.capture:
            self._run(n)  # eager (with capture: the warm-up)
        else:
            if n not in self.graphs:
                self.graphs[n] = lc.capture_graph(lambda: self._run(n))
            self.graphs[n].replay()
        self.calls += 1
        toks = self.io.numpy()[(ms + 1) * b:(ms + 1 + n) * b].reshape(n, b)
        if self.fused is not None and toks.min() < 0:  # the kernel's failure mark (full cache, or a stalled grid)
            raise RuntimeError("CausalLM.generate: the fused decode step failed (token -1: a full KV cache or a "
                               "grid that was not resident); LC_MODELS_FUSED_DECODE=0 runs the op-by-op step")
        return toks


def load(path, device="cpu", dtype=None, group=None, weight_layout=None):
    """A CausalLM from a Hugging Face folder (config.json + model.safetensors or a sharded index); with a
    process group, rank group.rank's tensor-parallel shard of it. weight_layout: how the linears' weights are
    stored, "in_out" or "out_in" (see CausalLM; None: the default for the architecture and device)."""
    config, tensors = load_checkpoint(path)
    return CausalLM(config, tensors, device=device, dtype=dtype, group=group, weight_layout=weight_layout)
