"""The fused decode step of a CausalLM (ops.h lc_decode_program_*): a whole batch-1 decode step (embedding, every
layer, the final norm, lm_head and its argmax) as one persistent CUDA kernel that streams each block's share of
the weights through shared memory ahead of the grid's barriers (src/backend/cuda/decode_fused_cuda.cu).

  prog = FusedDecode(model, caches)             # checks and uploads the program (keeps the tensors alive)
  prog.step(token, next_token, logits=None)     # device int64 [1] in, [1] out; float32 logits [vocab] optional

It takes bfloat16/float16 models on CUDA without tensor parallelism whose weights are stored [out, in]
(weight_layout "out_in"), every in-dimension a multiple of 256 (at most 12288), head_dim 64 or 128.
unsupported(model) says why a model does not qualify (None when it does). The engine uses it for batch-1
decode with LC_MODELS_FUSED_DECODE=1 (CausalLM.fused_decode); off by default: on the H100 (session 22) it is
correct and deterministic but slower than the op-by-op graph step (GPT-2 124M 0.51 against 0.38 ms a step,
LLaMA 1.1B 1.46 against 1.40), each grid barrier ~3 us and each L2 round trip of its critical path 1.5-2.5 us
while the weights stream (scripts/device/dp_probe.py).
Tests: tests/python/test_decode_program.py."""
from __future__ import annotations

from .. import _C


def unsupported(model):
    """None if model's decode can run fused, else the reason (a string)."""
    if model.device != "cuda":
        return "device is not cuda"
    if model.dtype not in ("bfloat16", "float16"):
        return f"dtype {model.dtype} (the fused step takes bfloat16 and float16)"
    if model.group is not None:
        return "tensor parallelism"
    if model.weight_layout != "out_in":
        return "weight_layout is not 'out_in'"
    ffn = model.layers[0]["w_proj" if model.arch == "gpt2" else "w_down"].shape[0]
    return dims_unsupported(model.hd, (model.d, model.h * model.hd, ffn))


def dims_unsupported(head_dim, in_dims):
    """None if the kernel takes head_dim and the linears' in-dimensions (d, heads * head_dim, ffn), else why."""
    if head_dim not in (64, 128):
        return f"head_dim {head_dim} (64 or 128)"
    for k in in_dims:
        if k % 256 or k > 12288:
            return f"an in-dimension of {k} (a multiple of 256 up to 12288)"
    return None


def program_args(model):
    """(arch, config, tensors, layers) of the model as _C._decode_program_new takes them (the caches go last)."""
    m = model
    if m.arch == "gpt2":
        layers = [(L["ln1_w"], L["ln1_b"], L["w_qkv"], L["b_qkv"], L["w_o"], L["b_o"], L["ln2_w"], L["ln2_b"],
                   L["w_fc"], L["b_fc"], L["w_proj"], L["b_proj"]) for L in m.layers]
        return ("gpt2", (m.h, m.hkv, m.eps, m.act, 0, 10000.0, None), (m.wte, m.wpe, m.lnf_w, m.lnf_b, m.lm_head),
                layers)
    layers = [(L["in_w"], None, L["w_qkv"], L["b_qkv"], L["w_o"], L["b_o"], L["post_w"], None, L["w_gu"], L["b_gu"],
               L["w_down"], L["b_down"]) for L in m.layers]
    return ("llama", (m.h, m.hkv, m.eps, None, m.window or 0, m.theta, m.rope_scaling),
            (m.embed, None, m.norm_w, None, m.lm_head), layers)


class FusedDecode:
    """The fused step of model over caches (one KVCache a layer, batch 1); see the module docstring."""

    def __init__(self, model, caches):
        why = unsupported(model)
        if why is not None:
            raise ValueError(f"FusedDecode: model: not supported by the fused decode step: {why}")
        args = program_args(model)
        self._keep = (args, list(caches))  # the program holds their addresses
        self._cap = _C._decode_program_new(*args, [c._cap for c in caches])

    def step(self, token, next_token=None, logits=None):
        """One step at the caches' current length: token (int64 [1] on the device) in, the caches appended,
        next_token (int64 [1]) = the argmax, logits (float32 [vocab]) written when given."""
        _C._decode_program_step(self._cap, token, next_token, logits)
