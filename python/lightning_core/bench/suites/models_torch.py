"""Peer (b) of the models suite: GPT-2 and LLaMA-family causal LMs written in plain torch, the gpt-fast design
(static KV cache, the one-token decode step captured once as a CUDA graph and replayed).

  lm = TorchLM(torch, F, config, tensors, device="cuda", dtype="bfloat16")   # load_checkpoint's (config, tensors)
  logits = lm.logits(ids)                       # ids [B, S] -> float32 logits [B, S, vocab] (full causal forward)
  dec = lm.decoder(batch, max_seq, graph=True)  # static cache [B, Hkv, max_seq, hd] per layer, buffers, graph
  toks = dec.generate(ids, n_new, timings)      # ids [B, P] (same length) -> new tokens [B, n_new] (greedy)

Weights: loaded from the same safetensors arrays as our runner (lightning_core.models.load_checkpoint), cast
to `dtype` by torch, stored [out, in] for F.linear; q/k/v fused into one projection and LLaMA's gate/up into
one. Blocks: GPT-2 (learned positions, LayerNorm, GELU-tanh, tied head), LLaMA (RMSNorm computed in float32
as Hugging Face does, half-split RoPE with inverse frequencies from models.hf.rope_inv_freq so rope_scaling
is honoured, SwiGLU, GQA, optional q/k/v and o/mlp biases of Qwen2-style configs).
Prefill: one eager forward of the prompt, keys/values written into the cache, F.scaled_dot_product_attention
with is_causal (GQA via enable_gqa, or k/v repeated on torch without it). Decode step: the token and its
position live in device tensors; the new k/v are written at the position by index_copy_; attention reads the
whole static cache under a mask (key index <= position) with the query heads of one KV head as the rows of a
[B, Hkv, G, hd] query (GQA without repeating k/v); argmax is written back into the token tensor and into the
output buffer, the position advanced in place: on CUDA the step is one graph replay, no host sync until the
end. On the CPU the same step runs eagerly (graph=False).
Used by suites/models.py; checked there against the float64 reference (testing.ref_models) on every run.
"""
from __future__ import annotations

import time

import numpy as np


def _to_torch(torch, a, device, dtype):
    """A NumPy array (float32/float16, or ml_dtypes bfloat16) -> a torch tensor of `dtype` on `device`."""
    a = np.asarray(a)
    if a.dtype.name == "bfloat16":
        t = torch.from_numpy(np.array(a.view(np.int16), copy=True)).view(torch.bfloat16)
    else:
        t = torch.from_numpy(np.array(a, copy=True))
    return t.to(device=device, dtype=dtype).contiguous()


class TorchLM:
    """Weights and the forward of one model in plain torch; see the module docstring."""

    def __init__(self, torch, F, config, tensors, device="cuda", dtype="bfloat16"):
        from ...models.hf import GPT2Config, rope_inv_freq
        self.torch, self.F, self.config, self.device = torch, F, config, device
        self.dtype = getattr(torch, dtype)
        self.gpt2 = isinstance(config, GPT2Config)
        w = lambda name: _to_torch(torch, tensors[name], device, self.dtype)  # noqa: E731
        wt = lambda name: _to_torch(torch, np.asarray(tensors[name]).T, device, self.dtype)  # noqa: E731
        opt = lambda name: w(name) if name in tensors else None  # noqa: E731
        c = config
        self.layers = []
        if self.gpt2:
            self.d, self.h, self.hkv, self.eps = c.n_embd, c.n_head, c.n_head, c.layer_norm_epsilon
            self.hd, self.vocab = self.d // self.h, c.vocab_size
            self.act = "none" if c.activation_function == "gelu" else "tanh"
            self.wte, self.wpe = w("wte.weight"), w("wpe.weight")
            for i in range(c.n_layer):
                p = f"h.{i}."
                self.layers.append({
                    "ln1": (w(p + "ln_1.weight"), w(p + "ln_1.bias")),
                    "ln2": (w(p + "ln_2.weight"), w(p + "ln_2.bias")),
                    "qkv": (wt(p + "attn.c_attn.weight"), w(p + "attn.c_attn.bias")),  # Conv1D [in, out] -> [out, in]
                    "o": (wt(p + "attn.c_proj.weight"), w(p + "attn.c_proj.bias")),
                    "fc": (wt(p + "mlp.c_fc.weight"), w(p + "mlp.c_fc.bias")),
                    "proj": (wt(p + "mlp.c_proj.weight"), w(p + "mlp.c_proj.bias"))})
            self.lnf = (w("ln_f.weight"), w("ln_f.bias"))
            self.head = self.wte if c.tie_word_embeddings else w("lm_head.weight")
        else:
            self.d, self.h, self.hkv, self.hd = c.hidden_size, c.num_attention_heads, c.num_key_value_heads, c.head_dim
            self.eps, self.vocab, self.ffn = c.rms_norm_eps, c.vocab_size, c.intermediate_size
            if c.sliding_window is not None:
                raise ValueError("TorchLM: sliding_window configs are not written here")
            self.embed = w("model.embed_tokens.weight")
            for i in range(c.num_hidden_layers):
                p = f"model.layers.{i}."
                qkv = torch.cat([w(p + f"self_attn.{n}_proj.weight") for n in "qkv"], 0)
                bq = [opt(p + f"self_attn.{n}_proj.bias") for n in "qkv"]
                gate_up = torch.cat([w(p + "mlp.gate_proj.weight"), w(p + "mlp.up_proj.weight")], 0)
                bgu = [opt(p + f"mlp.{n}_proj.bias") for n in ("gate", "up")]
                self.layers.append({
                    "in": w(p + "input_layernorm.weight"), "post": w(p + "post_attention_layernorm.weight"),
                    "qkv": (qkv, torch.cat(bq) if bq[0] is not None else None),
                    "o": (w(p + "self_attn.o_proj.weight"), opt(p + "self_attn.o_proj.bias")),
                    "gate_up": (gate_up, torch.cat(bgu) if bgu[0] is not None else None),
                    "down": (w(p + "mlp.down_proj.weight"), opt(p + "mlp.down_proj.bias"))})
            self.norm = w("model.norm.weight")
            self.head = self.embed if c.tie_word_embeddings else w("lm_head.weight")
            inv = rope_inv_freq(c)  # float64 [hd / 2]
            ang = np.arange(c.max_position_embeddings, dtype=np.float64)[:, None] * inv[None, :]
            ang = np.concatenate([ang, ang], axis=1)
            self.cos = torch.from_numpy(np.cos(ang).astype(np.float32)).to(device=device, dtype=self.dtype)
            self.sin = torch.from_numpy(np.sin(ang).astype(np.float32)).to(device=device, dtype=self.dtype)
        self.g = self.h // self.hkv
        try:  # GQA prefill without repeating k/v where torch has it
            q = torch.zeros(1, 2, 1, 4)
            F.scaled_dot_product_attention(q, q[:, :1], q[:, :1], enable_gqa=True)
            self.enable_gqa = True
        except (TypeError, RuntimeError):
            self.enable_gqa = False

    # ---- pieces ---------------------------------------------------------------------------------------
    def _rms(self, x, w):
        x32 = x.float()
        x32 = x32 * self.torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return w * x32.to(self.dtype)

    def _norm1(self, x, L):
        if self.gpt2:
            return self.F.layer_norm(x, (self.d,), L["ln1"][0], L["ln1"][1], self.eps)
        return self._rms(x, L["in"])

    def _mlp(self, x, L):
        F = self.F
        if self.gpt2:
            m = F.layer_norm(x, (self.d,), L["ln2"][0], L["ln2"][1], self.eps)
            return F.linear(F.gelu(F.linear(m, *L["fc"]), approximate=self.act), *L["proj"])
        m = self._rms(x, L["post"])
        g, u = F.linear(m, *L["gate_up"]).split(self.ffn, -1)
        return F.linear(F.silu(g) * u, *L["down"])

    def _final(self, x):
        if self.gpt2:
            return self.F.layer_norm(x, (self.d,), self.lnf[0], self.lnf[1], self.eps)
        return self._rms(x, self.norm)

    def _rope(self, x, cos, sin):
        half = self.hd // 2
        rot = self.torch.cat([-x[..., half:], x[..., :half]], -1)
        return x * cos + rot * sin

    def _embed(self, ids, pos):
        """ids [B, S], pos [S] (long tensors) -> [B, S, d]."""
        if self.gpt2:
            return self.wte[ids] + self.wpe[pos][None]
        return self.embed[ids]

    def _split_qkv(self, a, L, b, s):
        qkv = self.F.linear(a, *L["qkv"])  # [B, S, (h + 2 hkv) hd]
        q, k, v = qkv.split([self.h * self.hd, self.hkv * self.hd, self.hkv * self.hd], -1)
        return (q.view(b, s, self.h, self.hd).transpose(1, 2), k.view(b, s, self.hkv, self.hd).transpose(1, 2),
                v.view(b, s, self.hkv, self.hd).transpose(1, 2))

    # ---- full causal forward (prefill) ----------------------------------------------------------------
    def forward(self, ids, cache=None, last_only=True):
        """ids [B, S] long (positions 0..S-1) -> logits [B, vocab] of the last position (or [B, S, vocab]);
        with cache (a list of (k, v) [B, Hkv, L, hd] per layer) the keys/values are written at 0..S-1."""
        torch, F = self.torch, self.F
        b, s = ids.shape
        pos = torch.arange(s, device=ids.device)
        x = self._embed(ids, pos)
        if not self.gpt2:
            cos, sin = self.cos[:s], self.sin[:s]
        for i, L in enumerate(self.layers):
            q, k, v = self._split_qkv(self._norm1(x, L), L, b, s)
            if not self.gpt2:
                q, k = self._rope(q, cos, sin), self._rope(k, cos, sin)
            if cache is not None:
                cache[i][0][:, :, :s].copy_(k)
                cache[i][1][:, :, :s].copy_(v)
            if self.g == 1:
                att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            elif self.enable_gqa:
                att = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
            else:
                att = F.scaled_dot_product_attention(q, k.repeat_interleave(self.g, 1), v.repeat_interleave(self.g, 1),
                                                     is_causal=True)
            x = x + F.linear(att.transpose(1, 2).reshape(b, s, self.h * self.hd), *L["o"])
            x = x + self._mlp(x, L)
        x = self._final(x[:, -1] if last_only else x)
        return F.linear(x, self.head)

    def logits(self, ids):
        """float32 NumPy logits [B, S, vocab] of ids [B, S] (the correctness check)."""
        torch = self.torch
        with torch.inference_mode():
            t = torch.as_tensor(np.asarray(ids, np.int64), device=self.device)
            return self.forward(t, None, last_only=False).float().cpu().numpy()

    def decoder(self, batch, max_seq, graph=None):
        return _Decoder(self, batch, max_seq, self.device == "cuda" if graph is None else graph)


class _Decoder:
    """The static state of one batch size: caches, token/position/output buffers, the captured step."""

    def __init__(self, lm, batch, max_seq, graph):
        torch = lm.torch
        self.lm, self.b, self.max_seq, self.use_graph = lm, batch, max_seq, graph
        dev, dt = lm.device, lm.dtype
        self.cache = [(torch.zeros(batch, lm.hkv, max_seq, lm.hd, device=dev, dtype=dt),
                       torch.zeros(batch, lm.hkv, max_seq, lm.hd, device=dev, dtype=dt)) for _ in lm.layers]
        self.tok = torch.zeros(batch, dtype=torch.long, device=dev)
        self.pos = torch.zeros(1, dtype=torch.long, device=dev)
        self.step_i = torch.zeros(1, dtype=torch.long, device=dev)
        self.keys = torch.arange(max_seq, device=dev)
        self.out = torch.zeros(batch, max_seq, dtype=torch.long, device=dev)
        self.graph = None

    def _step(self):
        """One token for every sequence at position self.pos: cache write, attention over the cache under
        the mask, argmax into self.tok and self.out[:, step_i]; pos and step_i advanced in place."""
        lm, F = self.lm, self.lm.F
        b, h, hkv, hd = self.b, lm.h, lm.hkv, lm.hd
        x = lm._embed(self.tok[:, None], self.pos)[:, 0]  # [B, d]
        mask = (self.keys <= self.pos)[None, None, None, :]  # [1, 1, 1, L]
        if not lm.gpt2:
            cos, sin = lm.cos.index_select(0, self.pos), lm.sin.index_select(0, self.pos)  # [1, hd]
        for i, L in enumerate(lm.layers):
            qkv = F.linear(lm._norm1(x, L), *L["qkv"])
            q, k, v = qkv.split([h * hd, hkv * hd, hkv * hd], -1)
            q, k, v = q.view(b, h, hd), k.view(b, hkv, hd), v.view(b, hkv, hd)
            if not lm.gpt2:
                q, k = lm._rope(q, cos, sin), lm._rope(k, cos, sin)
            kc, vc = self.cache[i]
            kc.index_copy_(2, self.pos, k[:, :, None])
            vc.index_copy_(2, self.pos, v[:, :, None])
            att = F.scaled_dot_product_attention(q.view(b, hkv, lm.g, hd), kc, vc, attn_mask=mask)  # [B, Hkv, G, hd]
            x = x + F.linear(att.reshape(b, h * hd), *L["o"])
            x = x + lm._mlp(x, L)
        nxt = F.linear(lm._final(x), lm.head).argmax(-1)
        self.tok.copy_(nxt)
        self.out.index_copy_(1, self.step_i, nxt[:, None])
        self.pos.add_(1)
        self.step_i.add_(1)

    def _capture(self):
        torch = self.lm.torch
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):  # warm-up off the capture (its cache writes are overwritten by the prefill)
            for _ in range(2):
                self.pos.fill_(0)
                self.step_i.fill_(0)
                self._step()
        torch.cuda.current_stream().wait_stream(s)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self._step()
        torch.cuda.synchronize()

    def _sync(self):
        if self.lm.device == "cuda":
            self.lm.torch.cuda.synchronize()

    def prefill(self, ids_t):
        """The prompt into the cache; the first new token into tok and out[:, 0]; position set after it."""
        first = self.lm.forward(ids_t, self.cache).argmax(-1)
        self.tok.copy_(first)
        self.out[:, 0].copy_(first)
        self.pos.fill_(ids_t.shape[1])
        self.step_i.fill_(1)

    def generate(self, ids, n_new, timings=None):
        """ids [B, P] (NumPy ints, B = the decoder's batch) -> new tokens [B, n_new] (NumPy int64), greedy.
        timings receives prefill_ms and decode_ms (host clock, synchronised) and decode_steps."""
        torch = self.lm.torch
        ids = np.asarray(ids, np.int64)
        if ids.shape[0] != self.b or ids.shape[1] + n_new > self.max_seq:
            raise ValueError(f"TorchLM decoder: ids: expected [{self.b}, P] with P + n_new <= {self.max_seq}, "
                             f"got {list(ids.shape)} and n_new {n_new}")
        with torch.inference_mode():
            ids_t = torch.as_tensor(ids, device=self.lm.device)
            if self.use_graph and self.graph is None:
                self._capture()
            self._sync()
            t0 = time.perf_counter()
            self.prefill(ids_t)
            self._sync()
            t1 = time.perf_counter()
            for _ in range(n_new - 1):
                if self.graph is not None:
                    self.graph.replay()
                else:
                    self._step()
            self._sync()
            t2 = time.perf_counter()
            toks = self.out[:, :n_new].cpu().numpy()
        if timings is not None:
            timings.update(prefill_ms=(t1 - t0) * 1e3, decode_ms=(t2 - t1) * 1e3, decode_steps=n_new - 1)
        return toks
