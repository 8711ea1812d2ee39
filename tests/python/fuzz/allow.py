"""The fuzzer's one allow-list: findings that are known and being fixed, each tied to an item of issue 12.

An entry matches a finding record (worker.py) by its ``kind`` and regular expressions over the target
name and over ``call + detail``. A matching finding is reported as "known (issue 12 item N)" and does
not fail the run. Remove an entry once its fix is merged: the fuzz test then guards the fix.
Keep this list small; never add an entry for a finding that is not tracked by an issue item.
"""
import re

ALLOW = [
    # issue 12 item 8: lc_error formats lc_last_error() into itself -> "matmul_session: a: matmul_session: a: ..."
    dict(item=8, kinds={"garbled_message"}, target=r".*", text=r"'(\w+)': '\1: \w+: \1: "),
    # issue 12 item 12: ConvAttentionSession takes bool sizes and raises OverflowError for pad_h=2**31
    dict(item=12, kinds={"accepted_invalid", "bad_exception"}, target=r"session conv_attention|generic lc\.ConvAttentionSession",
         text=r"ConvAttentionSession\(.*(True|OverflowError)"),
    # issue 12 item 12 (same mechanism, in sessions.py): attention_forward_with_policy / attention_policy_session
    # build their cache key with int(seq), int(head_dim) before any check: seq=float('inf') -> OverflowError
    dict(item=12, kinds={"bad_exception"}, target=r"attention_forward_with_policy|attention_policy_session|session policy",
         text=r"OverflowError: cannot convert float"),
    # issue 12 item 13: lc.api graph mode applies other input rules than eager mode (b=None, int32/list x, ...)
    dict(item=13, kinds={"refused_valid", "accepted_invalid", "nonfinite_output", "wrong_value"},
         target=r"(api\.|lightning_)conv_attention",
         text=r"execution_mode='graph'|'graph'\)"),
    # issue 12 item 5: conv_attention_torchstrong_nchw_into drops the result for a non-contiguous out (and, the
    # same Python-layer out handling, does not refuse an out that overlaps an input)
    dict(item=5, kinds={"accepted_invalid", "into_return", "wrong_value"}, target=r"(api\.|lightning_)conv_attention\w*_into",
         text=r"out( overlaps|: layout)|not written"),
    # issue 12 item 6: causal attention lets a NaN/Inf in a masked row poison earlier rows
    dict(item=6, kinds={"nan_pattern", "wrong_result"}, target=r".*attention.*|session.*", text=r"causal=(True|1)|NaN pattern"),
]


def match(rec):
    """The allow-list entry that covers finding ``rec``, or None."""
    text = f"{rec.get('call', '')}\n{rec.get('detail', '')}"
    for e in ALLOW:
        if rec.get("kind") in e["kinds"] and re.search(e["target"], rec.get("target", "")) and re.search(e["text"], text, re.S):
            return e
    return None


# issue 12 item 15: run_batch_sync_into(..., loops) (and the other loops arguments) accept loops >= 2**31
# and run them: a certain hang, so the generators clamp huge loops instead of spending the case timeout.
HUGE_LOOPS_ITEM = 15


def defer_huge_loops(name, value):
    """``value`` for an argument ``name``, with loops counts above 2**16 replaced by 2 (item 15)."""
    if name in ("loops", "n") and isinstance(value, int) and not isinstance(value, bool) and value > 2**16:
        return 2
    return value
