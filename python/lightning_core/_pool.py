"""_pool.py — the bounded, thread-safe object cache behind plain functions that reuse stateful objects.

``ObjectPool(capacity, per_key)``: ``with pool.borrow(key, make) as obj:`` gives the calling thread sole
use of an object for ``key`` — an idle cached one, else a new ``make()`` — and puts it back afterwards.
Two threads never hold the same object at once, so an object with resident buffers (a GraphPlan) is
never shared by concurrent calls, and concurrent calls of one key run in parallel on separate objects.
Bounds: at most ``capacity`` keys (least recently used dropped first) and at most ``per_key`` idle
objects per key (a burst of more concurrent callers makes extra objects that are dropped on return), so
at most ``capacity * per_key`` objects are kept. Used by lc.api graph mode (plans per shape) and
Graph.run (plans per device/fuse). Tests: tests/python/test_threads_hidden_state.py.
"""
import threading
from collections import OrderedDict
from contextlib import contextmanager


def check_capacity(fn, n, lo=1):
    """``n`` as an int >= lo (TypeError for non-ints and bool, ValueError below lo)."""
    if isinstance(n, bool) or not hasattr(n, "__index__"):
        raise TypeError(f"{fn}: capacity: expected an int, got {type(n).__name__}")
    n = n.__index__()
    if n < lo:
        raise ValueError(f"{fn}: capacity: expected an int >= {lo}, got {n}")
    return n


class ObjectPool:
    """LRU of key -> idle objects; see the module docstring."""

    def __init__(self, capacity=64, per_key=8):
        self._lock = threading.Lock()
        self._idle = OrderedDict()  # key -> list of idle objects, least recently used first
        self._capacity = check_capacity("ObjectPool", capacity)
        self._per_key = check_capacity("ObjectPool", per_key)
        self._generation = None

    @property
    def capacity(self):
        return self._capacity

    def set_capacity(self, n):
        """At most ``n`` keys from now on (extra least recently used keys are dropped at once)."""
        with self._lock:
            self._capacity = n
            self._trim()

    def clear(self):
        with self._lock:
            self._idle.clear()

    def info(self):
        """{'keys', 'idle', 'capacity', 'per_key'}: keys cached, idle objects over all keys, the bounds."""
        with self._lock:
            return {"keys": len(self._idle), "idle": sum(len(v) for v in self._idle.values()),
                    "capacity": self._capacity, "per_key": self._per_key}

    def _trim(self):
        while len(self._idle) > self._capacity:
            self._idle.popitem(last=False)

    def renew(self, generation):
        """Drops every cached object unless ``generation`` equals the last one given (compared with
        ``==`` after an identity test of element 0): the owner's state changed, its objects are stale."""
        with self._lock:
            g = self._generation
            if g is not None and g[0] is generation[0] and g[1:] == generation[1:]:
                return
            self._idle.clear()
            self._generation = generation

    @contextmanager
    def borrow(self, key, make):
        obj = None
        with self._lock:
            idle = self._idle.get(key)
            if idle:
                obj = idle.pop()
                self._idle.move_to_end(key)
        if obj is None:
            obj = make()
        try:
            yield obj
        finally:
            with self._lock:
                idle = self._idle.get(key)
                if idle is None:
                    idle = self._idle[key] = []
                self._idle.move_to_end(key)
                if len(idle) < self._per_key:
                    idle.append(obj)
                self._trim()
