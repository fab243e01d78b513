"""FaultyProvider: wraps a real provider and makes a share of its calls fail transiently. A FAKE
fault, around a real provider.

Each call of a provider method fails with probability ``rate``: half of the failures are a
``Throttled`` raised before the call (the cloud refused it), half an ``Unavailable`` raised
after the call went through (the answer was lost: the worst case for idempotence). The random
source is seeded, so a failing run can be replayed. ``failures`` counts what was injected.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from typing import Any

from klink.errors import Throttled, Unavailable

# Reads and writes of the provider interface that the engine calls; attributes are passed
# through untouched.
_SAFE = frozenset({"name", "http_probes", "close"})


class FaultyProvider:
    def __init__(self, inner: Any, rate: float = 0.2, seed: int = 1) -> None:
        self.inner = inner
        self.rate = rate
        self.random = random.Random(seed)  # noqa: S311 - faults, not secrets
        self.failures: Counter[str] = Counter()
        self.calls = 0
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.inner, name)
        if name in _SAFE or name.startswith("_") or not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls += 1
                roll = self.random.random()
            if roll < self.rate / 2:
                self.failures[f"throttled:{name}"] += 1
                raise Throttled(f"injected: Rate exceeded ({name})")
            result = value(*args, **kwargs)
            if roll < self.rate:
                self.failures[f"lost:{name}"] += 1
                raise Unavailable(f"injected: 503 after {name} went through")
            return result

        return call
