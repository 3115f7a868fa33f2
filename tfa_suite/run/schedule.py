"""When a training session stops its compiled calls: evaluations, checkpoints, metrics rows.

Events fall on multiples of their intervals in env steps. Calls are sized from the env
step count alone, never from timing, so where they end (and so every logged figure)
depends only on the config and the seed.
"""

from __future__ import annotations

NEVER = 2**62


def next_multiple(steps: int, interval: int) -> int:
    """The first multiple of `interval` after `steps`; NEVER for interval 0 (off)."""
    if interval <= 0:
        return NEVER
    return (steps // interval + 1) * interval


class EventSchedule:
    """The next env step of each event, moved on as the events happen."""

    def __init__(
        self, steps: int, eval_interval: int, checkpoint_interval: int, metrics_interval: int
    ):
        self._intervals = {
            "eval": eval_interval,
            "checkpoint": checkpoint_interval,
            "metrics": metrics_interval,
        }
        self._next = {name: next_multiple(steps, i) for name, i in self._intervals.items()}

    def next_event(self, end: int) -> int:
        """The env step the next call should reach: the nearest event, or the run's end."""
        return min(end, *self._next.values())

    def due(self, name: str, steps: int) -> bool:
        return steps >= self._next[name]

    def advance(self, name: str, steps: int) -> None:
        self._next[name] = next_multiple(steps, self._intervals[name])
