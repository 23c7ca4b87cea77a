"""Exponential backoff with jitter between delivery attempts."""

from __future__ import annotations

import random


class Backoff:
    """Delays that double from ``initial`` up to ``maximum``, each scaled by a random factor
    in [0.5, 1.0] so that agents cut off by the same outage do not retry in lockstep."""

    def __init__(self, initial: float, maximum: float, rng: random.Random | None = None) -> None:
        if initial <= 0 or maximum < initial:
            raise ValueError(f"invalid backoff bounds: initial {initial}s, maximum {maximum}s")
        self.initial = initial
        self.maximum = maximum
        self.attempts = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts one more failure."""
        ceiling = min(self.maximum, self.initial * (2 ** min(self.attempts, 32)))
        self.attempts += 1
        factor: float = 0.5 + self._rng.random() / 2
        return float(ceiling * factor)

    def reset(self) -> None:
        self.attempts = 0
