"""Per-kernel device time of one decode step (developer probe, run under ncu; scripts/device/step_ncu.sh):
loads a make_random folder (argv[1]) in bf16 (weight_layout argv[2], optional) on CUDA, warms the decode graphs, then generates again with one
step a replay and an NVTX range "step" around the 7th step's replay (pushed from the stream callback), so
`ncu --nvtx --nvtx-include step/ --graph-profiling node` profiles exactly one step's kernels."""
import sys

import torch

from lightning_core.models import load


def main():
    model = load(sys.argv[1], device="cuda", dtype="bfloat16", weight_layout=sys.argv[2] if len(sys.argv) > 2 else None)
    prompts = [list(range(1, 33))]
    model.generate(prompts, 12, graph_steps=1)  # eager step, capture
    model.generate(prompts, 12, graph_steps=1)
    torch.cuda.synchronize()

    def stream(step, toks):
        if step == 6:
            torch.cuda.nvtx.range_push("step")
        elif step == 7:
            torch.cuda.nvtx.range_pop()

    model.generate(prompts, 12, graph_steps=1, stream=stream)
    torch.cuda.synchronize()


if __name__ == "__main__":
    main()
