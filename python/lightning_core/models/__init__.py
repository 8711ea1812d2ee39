"""lightning_core.models: language-model checkpoints (Hugging Face folders, safetensors) and runners.

- ``safetensors``: our safetensors reader (mmap, zero copy, validated) and writer; sharded indexes.
- ``hf``: config.json -> GPT2Config / LlamaConfig, the expected tensors, ``load_checkpoint``.
- ``make_random``: random-weight GPT-2 / LLaMA folders (``python -m lightning_core.models.make_random``).
- ``engine``: ``load(path, device=, dtype=)`` -> ``CausalLM`` (forward with or without a KV cache, greedy
  ``generate`` for batches of prompts of different lengths); ``group=`` loads a tensor-parallel shard.
- ``tp``: the Megatron sharding of a checkpoint over the ranks of a process group, and the logits gather.
Reference: docs/python_api.md ("Checkpoints: Hugging Face folders and safetensors").
Tests: tests/python/test_checkpoint_hf.py, tests/python/test_engine.py, tests/python/test_tp.py.
"""
from .hf import (ConfigError, GPT2Config, LlamaConfig, RopeScaling, expected_tensors, load_checkpoint,
                 parse_config, read_config, rope_inv_freq)
from .engine import CausalLM, load
from .safetensors import (SafetensorsError, SafetensorsFile, ShardedSafetensors, load_file, open_weights,
                          save_file, save_file_streaming)

__all__ = ["CausalLM", "load", "ConfigError", "GPT2Config", "LlamaConfig", "RopeScaling", "SafetensorsError", "SafetensorsFile",
           "ShardedSafetensors", "expected_tensors", "load_checkpoint", "load_file", "open_weights",
           "parse_config", "read_config", "rope_inv_freq", "save_file", "save_file_streaming"]
