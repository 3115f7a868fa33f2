"""MP4 writing that never leaves a half-written video where a good one was."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def mp4_writer(path: str, fps: int) -> Iterator[Any]:
    """An imageio writer on `<path>.tmp.mp4`, renamed onto `path` only if the block succeeds."""
    import imageio.v2 as imageio

    tmp = path + ".tmp.mp4"
    try:
        # macro_block_size 2: H.264 needs even sizes, and 2 avoids rescaling most frames.
        with imageio.get_writer(tmp, fps=fps, macro_block_size=2) as writer:
            yield writer
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
