"""Turn SIGINT and SIGTERM into a request to stop at the next safe point.

The compiled loop returns to the host about twice a second; there the training loop
checks for a request, writes a checkpoint and exits, so Ctrl-C or a scheduler's SIGTERM
never loses more than the current call's work. A second signal stops at once.

The run's caller can ask for the same stop (`StopRequest.early`): a tuner's pruner, told
of an evaluation, ends a run that is doing worse than its peers, checkpoint written.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class StopRequest:
    def __init__(self) -> None:
        self.signal_number: int | None = None
        # Why the run's caller asked it to stop (e.g. "pruned ..."), else None.
        self.early: str | None = None

    @property
    def requested(self) -> bool:
        return self.signal_number is not None or self.early is not None

    @property
    def exit_code(self) -> int:
        return 128 + (self.signal_number or 0)


@contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        # Signal handlers can only be installed from the main thread.
        yield request
        return

    def handler(signum: int, frame: object) -> None:
        if request.requested:
            raise KeyboardInterrupt
        request.signal_number = signum
        print(
            f"\n{signal.Signals(signum).name}: saving a checkpoint, then stopping "
            "(send again to stop at once)",
            flush=True,
        )

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
