"""TensorFlow's start-up, without the lines that say nothing on a machine without a GPU.

Importing TensorFlow 2.21 writes, from C++ and before absl's logging is set up (so
TF_CPP_MIN_LOG_LEVEL does not reach them), a "WARNING: All log messages before
absl::InitializeLog()" line and "Could not find cuda drivers" twice (once per library
that links the CUDA stub); the first device query adds "E0000 ... failed call to cuInit".
They are the normal state of a CPU-only machine, yet look like failures. `import_tensorflow`
runs the import and that first query with the process's stderr (file descriptor 2) caught,
then writes back every line that is not one of them: real errors still show.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator

# Substrings of the start-up lines that carry no information on a CPU-only machine.
NOISE = (
    "All log messages before absl::InitializeLog() is called",
    "cudart_stub.cc",
    "Could not find cuda drivers on your machine",
    "failed call to cuInit",
)


@contextlib.contextmanager
def filtered_stderr(noise: tuple[str, ...] = NOISE) -> Iterator[None]:
    """Catches what is written to file descriptor 2 inside the block (C++ included) and
    writes it back afterwards without the lines that contain any of `noise`."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = [
                line
                for line in caught.read().decode(errors="replace").splitlines(keepends=True)
                if not any(n in line for n in noise)
            ]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def import_tensorflow() -> None:
    """Imports TensorFlow and queries its GPUs once, with the start-up noise filtered.

    Later imports of TensorFlow are then free and print nothing more.
    """
    if "tensorflow" in sys.modules:
        return
    with filtered_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
