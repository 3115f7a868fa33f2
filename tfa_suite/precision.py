"""`--mixed_precision=bf16`: oneDNN's bfloat16 rewrite of the compiled graphs, CPU only.

Why a grappler rewrite and not Keras' `mixed_bfloat16` policy: TF-Agents builds its
Conv2D/Dense layers with an explicit float32 dtype, so the Keras policy changes nothing
(`make bench-atari` measures both). The rewrite instead casts the inputs of matmuls and
convolutions to bfloat16 inside every graph TensorFlow optimizes; weights, optimizer
state, checkpoints and the exported policy stay float32. It pays only on CPUs that do
bfloat16 in hardware (AVX512-BF16 or AMX); elsewhere it would be emulated and slower, so
it is refused there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from tfa_suite.errors import UserError

MODES = ("off", "bf16")
_OPTION = "auto_mixed_precision_onednn_bfloat16"
_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(path: str = "/proc/cpuinfo") -> set[str]:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def check_supported(mode: str, flags: set[str] | None = None) -> None:
    if mode not in MODES:
        raise UserError(f"--mixed_precision must be off or bf16, not {mode!r}")
    if mode == "bf16":
        flags = cpu_flags() if flags is None else flags
        if not flags & set(_CPU_FLAGS):
            raise UserError(
                "--mixed_precision=bf16 needs a CPU with AVX512-BF16 or AMX (the cpu flags "
                "avx512_bf16 / amx_bf16); this one has neither, so use --mixed_precision=off"
            )


@contextlib.contextmanager
def graph_precision(mode: str) -> Iterator[None]:
    """Turns the rewrite on for graphs optimized inside the block, and restores it after."""
    import tensorflow as tf

    if mode == "off":
        yield
        return
    previous = bool(tf.config.optimizer.get_experimental_options().get(_OPTION, False))
    tf.config.optimizer.set_experimental_options({_OPTION: True})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options({_OPTION: previous})
