"""Answers the app has already computed, kept in memory: a run folder's models do not change, so
the same profile (or form state) always gets the same answer. Bounded least-recently-used maps,
safe to share between Gradio's worker threads; nothing is written to disk."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from typing import Any


class AnswerCache:
    """A thread-safe least-recently-used map of at most ``size`` entries. ``get`` / ``put`` with
    a key of ``None`` (an unhashable request) do nothing: such a request is computed, not kept."""

    def __init__(self, size: int):
        self.size = int(size)
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable | None) -> Any | None:
        if key is None:
            return None
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: Hashable | None, value: Any) -> None:
        if key is None:
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def key_of(*parts: Any) -> tuple | None:
    """A cache key from request parts (a mapping becomes its sorted items, a list a tuple; every
    value with its type, so ``True``, ``1`` and ``1.0`` are different requests), or ``None`` when
    a part cannot be hashed (a client sent a nested object: compute, do not keep)."""

    def typed(v: Any) -> tuple:
        return (type(v).__name__, v)

    out: list = []
    for part in parts:
        if isinstance(part, Mapping):
            try:
                part = tuple(sorted((str(k), typed(v)) for k, v in part.items()))
            except TypeError:  # keys "1" and 1 with values that do not compare
                return None
        elif isinstance(part, list | tuple):
            part = tuple(typed(v) for v in part)
        else:
            part = typed(part)
        out.append(part)
    key = tuple(out)
    try:
        hash(key)
    except TypeError:
        return None
    return key
