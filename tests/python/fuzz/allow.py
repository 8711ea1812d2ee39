"""The fuzzer's one allow-list: findings that are known and being fixed, each tied to an item of issue 12.

An entry matches a finding record (worker.py) by its ``kind`` and regular expressions over the target
name and over ``call + detail``. A matching finding is reported as "known (issue 12 item N)" and does
not fail the run. Remove an entry once its fix is merged: the fuzz test then guards the fix.
Keep this list small; never add an entry for a finding that is not tracked by an issue item.
"""
import re

ALLOW = [
    # Empty: the issue 12 items once listed here (5, 6, 8, 12, 13) are fixed and merged; the fuzz test guards
    # them now. Add an entry only for a finding tracked by an open issue item, and remove it with the fix.
]


def match(rec):
    """The allow-list entry that covers finding ``rec``, or None."""
    text = f"{rec.get('call', '')}\n{rec.get('detail', '')}"
    for e in ALLOW:
        if rec.get("kind") in e["kinds"] and re.search(e["target"], rec.get("target", "")) and re.search(e["text"], text, re.S):
            return e
    return None


# Loops counts: values above LC_SESSION_MAX_LOOPS (2**24) are refused (issue 12 item 15, fixed) and stay in
# the cases; valid but long counts (2**16 .. 2**24) would only spend the case timeout, so they become 2.
MAX_LOOPS = 2**24


def defer_huge_loops(name, value):
    """``value`` for an argument ``name``, with a valid but long loops count (2**16 < n <= 2**24) replaced by 2."""
    if name in ("loops", "n") and isinstance(value, int) and not isinstance(value, bool) and 2**16 < value <= MAX_LOOPS:
        return 2
    return value
