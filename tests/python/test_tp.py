"""Tensor parallelism of the model runner (issue 17) in the one-process simulation, and the ThreadGroup it runs
on (lightning_core.distributed.threads, lightning_core.models.tp).

- Sharding maths: every rank's slices put back together (q/k/v head blocks, MLP columns, vocabulary rows
  minus the zero padding) give the checkpoint's tensors; replicated tensors are the checkpoint's own.
- Under run_threads, world sizes 1, 2, 3, 4 (configs whose heads and kv heads all divide: GPT-2 with 12
  heads; LLaMA with 24 heads, 12 kv heads (GQA), q/k/v/o and MLP biases, an MLP width of 178 that 3 and 4 do
  not divide, a vocabulary of 250 that 3 and 4 do not divide): the logits of every rank are the same bytes
  and equal the unsharded model's within float32 tolerance (5e-6 of the logits' scale: only the order of the
  partial sums differs; a wrong slice, bias counted twice or a missing all_reduce moves them by O(scale)),
  bfloat16 within the engine's 0.1; greedy generation of a batch of prompts of different lengths (16 tokens,
  float32) is token-identical to the unsharded model; seeded sampling gives the same tokens on every rank.
- Bad world sizes / ranks / groups: ValueError or TypeError naming heads, kv heads and the world size.
- ThreadGroup collectives against NumPy for every dtype (float32, float64, float16, bfloat16, int32, int64),
  mismatches across ranks, a raising rank and a rank that never comes: errors on every rank, no hang.
- The CLI's --tp-sim / --tp with --device cpu.
- CUDA (skipped without a GPU): a world-size-1 ThreadGroup on the GPU, decode graph-replayed; world size 2
  eager.
"""
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import lightning_core as lc
from lightning_core.distributed import ThreadGroup, run_threads
from lightning_core.distributed.threads import GroupError
from lightning_core.models import CausalLM, expected_tensors, load, parse_config
from lightning_core.models import tp as tpm
from lightning_core.models.make_random import make_random
from lightning_core.testing.ref_models import ref_forward

GPT2 = {"model_type": "gpt2", "vocab_size": 250, "n_positions": 64, "n_embd": 96, "n_layer": 2, "n_head": 12,
        "n_inner": None, "activation_function": "gelu_new", "tie_word_embeddings": True}
LLAMA = {"model_type": "llama", "vocab_size": 250, "hidden_size": 64, "intermediate_size": 178,
         "num_hidden_layers": 2, "num_attention_heads": 24, "num_key_value_heads": 12, "head_dim": 8,
         "max_position_embeddings": 128, "rms_norm_eps": 1e-5, "attention_bias": True, "mlp_bias": True,
         "tie_word_embeddings": False}
CONFIGS = {"gpt2": GPT2, "llama": LLAMA}


def _checkpoint(arch, seed=3):
    """(config, {canonical name: float32 ndarray}) of a random model (norm weights near 1)."""
    config = parse_config(dict(CONFIGS[arch]), arch)
    rng = np.random.default_rng(seed)
    t = {}
    for name, shape in expected_tensors(config).items():
        a = rng.standard_normal(shape).astype(np.float32) * np.float32(0.08)
        t[name] = a + 1 if ("norm" in name or "ln_" in name) and name.endswith("weight") else a
    return config, t


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def ckpt(request):
    return request.param, _checkpoint(request.param)


def _host(t):
    return t.numpy() if hasattr(t, "numpy") else np.asarray(t)


def _close(got, want, rel):
    scale = np.max(np.abs(want))
    err = np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)))
    assert np.all(np.isfinite(got)) and err <= rel * scale, (err, scale)


# ---- sharding maths ----------------------------------------------------------------------------------
def _reassemble(config, shards, name, full):
    """The checkpoint tensor `name` put back together from every rank's slice."""
    parts = [s.tensors[name] for s in shards]
    w = len(shards)
    if name in ("wte.weight", "model.embed_tokens.weight", "lm_head.weight"):
        a = np.concatenate(parts, axis=0)
        assert not np.any(a[full.shape[0]:]), "vocabulary padding must be zero rows"
        return a[:full.shape[0]]
    if ".attn.c_attn." in name:  # q | k | v blocks of each rank
        d = config.n_embd
        blocks = [np.concatenate([p[..., j * d // w:(j + 1) * d // w] for p in parts], axis=-1) for j in range(3)]
        return np.concatenate(blocks, axis=-1)
    cat = {"attn.c_proj.weight": 0, "mlp.c_fc.weight": 1, "mlp.c_fc.bias": 0, "mlp.c_proj.weight": 0,
           "o_proj.weight": 1, "down_proj.weight": 1}
    for suffix, axis in cat.items():
        if name.endswith(suffix):
            return np.concatenate(parts, axis=axis)
    if any(k in name for k in ("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj")):
        return np.concatenate(parts, axis=0)
    for p in parts:  # replicated
        assert p is full or np.shares_memory(p, full) or np.array_equal(p, full)
    return parts[0]


@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_shards_put_together_give_the_checkpoint(ckpt, world):
    arch, (config, t) = ckpt
    shards = [tpm.shard_checkpoint(config, t, r, world) for r in range(world)]
    for name, full in t.items():
        np.testing.assert_array_equal(_reassemble(config, shards, name, full), full, err_msg=name)
    h = config.n_head if arch == "gpt2" else config.num_attention_heads
    hkv = config.n_head if arch == "gpt2" else config.num_key_value_heads
    ffn = config.n_inner if arch == "gpt2" else config.intermediate_size
    assert all(s.heads == h // world and s.kv_heads == hkv // world for s in shards)
    assert shards[0].ffn[0] == 0 and shards[-1].ffn[1] == ffn
    assert all(shards[i].ffn[1] == shards[i + 1].ffn[0] for i in range(world - 1))
    sizes = [b - a for a, b in (s.ffn for s in shards)]
    assert max(sizes) - min(sizes) <= 1
    assert all(s.vocab_offset == s.rank * s.vocab_rows for s in shards) and shards[0].vocab_rows * world >= 250


def test_bad_world_sizes(ckpt):
    arch, (config, t) = ckpt
    heads = "n_head" if arch == "gpt2" else "num_key_value_heads"
    for world in (5, 7, 8 if arch == "llama" else 9):
        with pytest.raises(ValueError, match=f"heads.*{heads}.*world size {world}"):
            tpm.shard_checkpoint(config, t, 0, world)
    for world in (0, -2, 1.5, True, "2"):
        with pytest.raises(ValueError, match="world size"):
            tpm.shard_checkpoint(config, t, 0, world)
    for rank in (-1, 2, 1.0):
        with pytest.raises(ValueError, match="rank"):
            tpm.shard_checkpoint(config, t, rank, 2)
    with pytest.raises(ValueError, match="world size 5"):  # through the engine and run_threads: every rank fails
        run_threads(5, lambda g: CausalLM(config, t, group=g), timeout=20)


def test_bad_groups(ckpt):
    _, (config, t) = ckpt
    with pytest.raises(TypeError, match="group"):
        CausalLM(config, t, group=object())
    with pytest.raises(ValueError, match="group.*device"):
        CausalLM(config, t, device="cpu", group=ThreadGroup.create(1, device="cuda")[0])


# ---- sharded forward and generation --------------------------------------------------------------------
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_sharded_forward_equals_unsharded(ckpt, world):
    arch, (config, t) = ckpt
    ids = np.random.default_rng(world).integers(0, 250, (2, 9))
    want = _host(CausalLM(config, t)(ids))
    _close(want, ref_forward(config, t, ids), 2e-4)
    got = run_threads(world, lambda g: _host(CausalLM(config, t, group=g)(ids)))
    assert all(g.shape == (2, 9, 250) for g in got)
    assert all(g.tobytes() == got[0].tobytes() for g in got), "ranks must hold the same logits"
    _close(got[0], want, 5e-6)


@pytest.mark.parametrize("world", [2, 4])
def test_sharded_forward_bfloat16(ckpt, world):
    _, (config, t) = ckpt
    ids = np.random.default_rng(7).integers(0, 250, (2, 6))
    want = ref_forward(config, t, ids)
    unsharded = lc.cast(_host(CausalLM(config, t, dtype="bfloat16")(ids)), "float32")
    _close(unsharded, want, 0.1)
    got = run_threads(world, lambda g: lc.cast(_host(CausalLM(config, t, dtype="bfloat16", group=g)(ids)), "float32"))
    assert all(g.tobytes() == got[0].tobytes() for g in got)
    _close(got[0], want, 0.1)
    _close(got[0], unsharded, 0.1)


@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_sharded_greedy_generation_token_identical(ckpt, world):
    _, (config, t) = ckpt
    prompts = [[5, 17, 3, 99, 42, 7], [9, 8], [4, 4, 4, 1]]
    want = CausalLM(config, t).generate(prompts, 16)
    got = run_threads(world, lambda g: CausalLM(config, t, group=g).generate(prompts, 16))
    assert all(g == want for g in got)


def test_sharded_cached_forward_and_sampling(ckpt):
    """A KV cache holds this rank's kv heads; prefill + token-by-token logits equal the full forward; seeded
    sampling draws the same tokens on every rank (their logits are the same bytes)."""
    _, (config, t) = ckpt
    ids = np.random.default_rng(11).integers(0, 250, (2, 8))
    want = _host(CausalLM(config, t)(ids))

    def rank(g):
        m = CausalLM(config, t, group=g)
        cache = m.new_cache(2, 16)
        assert cache[0].k.shape[1] == m.hkv == m.tp.kv_heads
        parts = [_host(m.forward(ids[:, :5], cache=cache))] + [_host(m.forward(ids[:, j:j + 1], cache=cache))
                                                              for j in range(5, 8)]
        sampled = m.generate([[1, 2, 3], [4]], 10, temperature=0.9, top_k=40, seed=5)
        return np.concatenate(parts, axis=1), sampled

    got = run_threads(2, rank)
    _close(got[0][0], want, 5e-6)
    assert got[0][1] == got[1][1] and all(0 <= x < 250 for s in got[0][1] for x in s)


def test_load_with_group(tmp_path):
    """lc.models.load(path, group=) from a make_random folder (tiny configs: 4 heads, 2 kv heads)."""
    for arch in ("gpt2", "llama"):
        d = tmp_path / arch
        make_random(str(d), arch=arch, size="tiny", seed=2)
        want = load(str(d)).generate([[3, 1, 4, 1, 5], [9, 2]], 16)
        assert run_threads(2, lambda g: load(str(d), group=g).generate([[3, 1, 4, 1, 5], [9, 2]], 16)) == [want] * 2
        with pytest.raises(ValueError, match="world size 3"):
            run_threads(3, lambda g: load(str(d), group=g), timeout=20)


# ---- ThreadGroup --------------------------------------------------------------------------------------
DTYPES = ("float32", "float64", "float16", "bfloat16", "int32", "int64")


def _np_dtype(name):
    from lightning_core.dtypes import numpy_dtype
    return np.dtype(name) if name.startswith("int") else numpy_dtype(name)


def _data(dtype, rank, shape):
    rng = np.random.default_rng(100 + rank)
    if dtype.startswith("int"):
        return rng.integers(-1000, 1000, shape).astype(dtype)
    return rng.standard_normal(shape).astype(np.float32).astype(_np_dtype(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_collectives_match_numpy(dtype, world):
    shape = (2 * world, 3)
    xs = [_data(dtype, r, shape) for r in range(world)]
    acc = np.int64 if dtype.startswith("int") else np.float64
    total = np.sum([x.astype(acc) for x in xs], axis=0).astype(_np_dtype(dtype))

    def rank(g):
        r = g.rank
        t = lc.Tensor(xs[r], dtype=dtype)
        assert g.all_reduce(t) is t
        gathered = _host(g.all_gather(lc.Tensor(xs[r], dtype=dtype)))
        scattered = _host(g.reduce_scatter(lc.Tensor(xs[r], dtype=dtype)))
        b = lc.Tensor(np.full(shape, np.nan, np.float32).astype(_np_dtype(dtype)) if not dtype.startswith("int")
                      else np.full(shape, -7, dtype), dtype=dtype)
        g.broadcast(b, src=world - 1) if r != world - 1 else g.broadcast(lc.Tensor(xs[r], dtype=dtype), src=world - 1)
        g.barrier()
        return _host(t), gathered, scattered, _host(b) if r != world - 1 else xs[r]

    for r, (red, gat, sca, bro) in enumerate(run_threads(world, rank, timeout=30)):
        assert red.dtype == _np_dtype(dtype) and red.tobytes() == total.tobytes()
        assert gat.tobytes() == np.concatenate(xs, axis=0).tobytes()
        assert sca.tobytes() == total[2 * r:2 * r + 2].tobytes()
        assert bro.tobytes() == xs[world - 1].tobytes()


def test_collective_bad_inputs():
    g = ThreadGroup.create(2)[0]
    with pytest.raises(TypeError, match="t"):
        g.all_reduce(np.ones(3, np.float32))
    with pytest.raises(ValueError, match="divisible"):
        g.reduce_scatter(lc.Tensor(np.ones((3, 2), np.float32)))
    with pytest.raises(ValueError, match="src"):
        g.broadcast(lc.Tensor(np.ones(3, np.float32)), src=2)
    with pytest.raises(ValueError, match="device"):
        ThreadGroup.create(1, device="cuda")[0].all_reduce(lc.Tensor(np.ones(3, np.float32)))
    for bad in (0, -1, 2.0):
        with pytest.raises(ValueError, match="world_size"):
            ThreadGroup.create(bad)
    with pytest.raises(ValueError, match="timeout"):
        ThreadGroup.create(2, timeout=0)


def test_mismatch_across_ranks_ends_the_group():
    def shapes(g):
        g.all_reduce(lc.Tensor(np.ones(2 + g.rank, np.float32)))

    with pytest.raises(ValueError, match="ranks disagree.*rank 1.*\\[3\\]"):
        run_threads(2, shapes, timeout=20)

    def ops(g):
        t = lc.Tensor(np.ones(2, np.float32))
        g.all_reduce(t) if g.rank == 0 else g.all_gather(t)

    with pytest.raises(ValueError, match="all_reduce.*all_gather"):
        run_threads(2, ops, timeout=20)


def test_a_raising_rank_ends_the_others():
    """Rank 2 raises before its collective: the others, already waiting, raise GroupError naming rank 2 well
    before the timeout, and run_threads re-raises rank 2's error."""
    seen = {}

    def fn(g):
        if g.rank == 2:
            time.sleep(0.2)
            raise KeyError("rank two broke")
        try:
            g.all_reduce(lc.Tensor(np.ones(4, np.float32)))
        except GroupError as e:
            seen[g.rank] = str(e)
            raise

    t0 = time.perf_counter()
    with pytest.raises(KeyError, match="rank two broke") as info:
        run_threads(3, fn, timeout=60)
    assert time.perf_counter() - t0 < 30
    assert any("rank 2" in n for n in getattr(info.value, "__notes__", ["rank 2"]))
    assert set(seen) == {0, 1} and all("ended by rank 2" in s and "KeyError" in s for s in seen.values())


def test_a_rank_that_never_comes_times_out():
    def fn(g):
        if g.rank == 0:
            return "gone"
        g.barrier()

    t0 = time.perf_counter()
    with pytest.raises(GroupError, match="did not reach"):
        run_threads(2, fn, timeout=0.5)
    assert time.perf_counter() - t0 < 20
    groups = ThreadGroup.create(2, timeout=0.3)
    th = threading.Thread(target=lambda: None)
    th.start()
    th.join()
    with pytest.raises(GroupError):
        groups[0].barrier()  # the partner never comes
    with pytest.raises(GroupError, match="ended|broken"):
        groups[1].all_reduce(lc.Tensor(np.ones(2, np.float32)))  # and the group stays ended


# ---- CLI --------------------------------------------------------------------------------------------
def test_cli_tp_sim(tmp_path, capsys):
    from lightning_core.generate import main
    make_random(str(tmp_path), arch="llama", size="tiny", seed=4)
    want = load(str(tmp_path)).generate([5, 6, 7], 8)
    for flags in (["--tp-sim", "2"], ["--tp", "2", "--device", "cpu"]):
        assert main(["--model", str(tmp_path), "--ids", "5,6,7", "--max-new-tokens", "8"] + flags) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[0].split() == [str(x) for x in want]  # rank 0 alone prints
        assert "tp 2 (threads)" in out[1] and len(out) == 2
    with pytest.raises(SystemExit, match="world size 3"):
        main(["--model", str(tmp_path), "--ids", "1", "--tp-sim", "3"])
    with pytest.raises(SystemExit, match="--tp"):
        main(["--model", str(tmp_path), "--ids", "1", "--tp-sim", "2", "--tp", "2"])


# ---- CUDA ---------------------------------------------------------------------------------------------
requires_cuda = pytest.mark.skipif(not lc.cuda_available(), reason="no CUDA GPU here")


@requires_cuda
def test_cuda_world_size_one_group_graph_decode(ckpt):
    """A world-size-1 ThreadGroup on the GPU: its collectives touch neither host nor threads, so the decode
    step (with its all_reduce calls and the logits gather) is still one captured graph per step."""
    _, (config, t) = ckpt
    prompts = [[5, 17, 3, 99, 42], [9, 8], [4]]
    plain = CausalLM(config, t, device="cuda")
    want = plain.generate(prompts, 16, graph=False)
    g = ThreadGroup.create(1, device="cuda")[0]
    m = CausalLM(config, t, device="cuda", group=g)
    assert m.generate(prompts, 16) == want and len(m._graphs) == 1
    assert m.generate(prompts, 16, graph=True) == want
    ids = np.random.default_rng(0).integers(0, 250, (2, 7))
    _close(_host(m(ids)), _host(plain(ids)), 5e-6)


_TWO_THREADS_CUDA = """
import faulthandler, sys
faulthandler.dump_traceback_later({stacks}, exit=True)  # a hang prints every thread's stack, then exits
sys.path.insert(0, {here!r})
import pytest
import test_tp as T
from lightning_core.distributed import run_threads
from lightning_core.models import CausalLM
config, t = T._checkpoint({arch!r})
prompts = [[5, 17, 3], [9, 8, 1, 2]]
want = CausalLM(config, t, device="cuda").generate(prompts, 12, graph=False)

def rank(g):
    m = CausalLM(config, t, device="cuda", group=g)
    with pytest.raises(ValueError, match="graph"):
        m.generate(prompts, 2, graph=True)
    return m.generate(prompts, 12)

got = run_threads(2, rank, device="cuda", timeout=60.0)
assert got == [want, want], (got, want)
print("two-threads-ok")
"""


@requires_cuda
def test_cuda_world_size_two_threads_eager(ckpt):
    """Two ranks as threads of one process on one GPU, eager decode: tokens equal the model without a group.
    Runs in a child process: on the H100 (session 8) this test once stopped the suite at a 200 s timeout, so a
    hang here fails the test after 90 s with every thread's stack in the message. Failed on the H100 in sessions
    9-10 (tokens different from the unsharded model's) until cuBLASLt enqueues were serialised: a split-K
    GEMM's kernels from two threads interleaved on the shared stream over the one workspace
    (tests/python/test_cuda_threads.py); passes on the H100 since (session 10)."""
    arch, _ = ckpt
    code = _TWO_THREADS_CUDA.format(stacks=90, here=os.path.dirname(os.path.abspath(__file__)), arch=arch)
    try:
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=150)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the two-rank child did not finish in 150 s; stderr: {(e.stderr or '')[-4000:]}")
    assert r.returncode == 0 and "two-threads-ok" in r.stdout, (r.returncode, r.stdout[-2000:], r.stderr[-6000:])


@pytest.mark.skipif(not lc.distributed.available(), reason="no NCCL backend or no GPU here")
def test_nccl_world_size_one_tensor_parallel_generate(ckpt, tmp_path):
    """The NCCL process group (world size 1, rendezvous through a file) as the runner's group: greedy tokens
    equal the model without a group, the decode step is one captured graph with the NCCL all_reduce and
    all_gather inside, logits equal."""
    _, (config, t) = ckpt
    prompts = [[5, 17, 3, 99, 42], [9, 8]]
    plain = CausalLM(config, t, device="cuda")
    want = plain.generate(prompts, 12, graph=False)
    g = lc.distributed.init(rank=0, world_size=1, init_method=f"file://{tmp_path / 'rdv'}", timeout=60.0)
    try:
        m = CausalLM(config, t, device="cuda", group=g)
        assert m.generate(prompts, 12) == want and len(m._graphs) == 1
        assert m.generate(prompts, 12) == want  # the kept graph, replayed
        ids = np.random.default_rng(1).integers(0, 250, (2, 6))
        _close(_host(m(ids)), _host(plain(ids)), 5e-6)
    finally:
        lc.distributed.destroy()
