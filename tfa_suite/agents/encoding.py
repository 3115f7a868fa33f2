"""Discrete observations as network inputs: one-hot, inside the graph and the export.

A gymnasium `Discrete(n)` observation reaches the agents as an int64 scalar in [0, n-1]
and a `MultiDiscrete(nvec)` one as an int64 vector (`tfa_suite.envs.gym_adapter`). A
network cannot read a state's number as a magnitude (state 5 is not "more" than state 4),
so `OneHotObservation` turns each integer into a one-hot vector of its range and joins
them. It is the networks' preprocessing layer, so training, evaluation and the exported
SavedModel all take the raw integer observation.

Why not an embedding: a one-hot vector into the first dense layer is an embedding (one
weight row per state) without a second table to size; on the small tabular envs this is
for, it is the standard input.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from tfa_suite.errors import UnsupportedSpaceError

# Beyond this many one-hot inputs, a discrete observation is too large to encode this way.
MAX_ONE_HOT_WIDTH = 100_000


def is_discrete(spec: Any) -> bool:
    """A Discrete (int64 scalar) or MultiDiscrete (int64 vector) observation spec."""
    if not isinstance(spec, tf.TypeSpec) or not hasattr(spec, "dtype"):
        return False
    return tf.as_dtype(spec.dtype) == tf.int64 and spec.shape.rank in (0, 1)


def ranges(spec: Any) -> tuple[np.ndarray, np.ndarray]:
    """(minimum, number of values) per component of a discrete spec, as int64 vectors."""
    shape = tuple(spec.shape.as_list()) or (1,)
    low = np.broadcast_to(np.asarray(spec.minimum, np.int64), shape).reshape(-1)
    high = np.broadcast_to(np.asarray(spec.maximum, np.int64), shape).reshape(-1)
    return low.copy(), (high - low + 1)


def check_one_hot_width(spec: Any) -> None:
    """Refuses a discrete observation whose one-hot encoding would be too wide."""
    width = int(ranges(spec)[1].sum())
    if width > MAX_ONE_HOT_WIDTH:
        raise UnsupportedSpaceError(
            f"the discrete observation's one-hot encoding would have {width:,} inputs; "
            f"at most {MAX_ONE_HOT_WIDTH:,} are allowed"
        )


class OneHotObservation(tf.keras.layers.Layer):
    """int [..., ] or [..., k] observations -> float32 [..., sum(depths)] one-hots."""

    def __init__(self, minimum: list[int], depths: list[int], scalar: bool, **kwargs: Any):
        super().__init__(**kwargs)
        self.minimum, self.depths, self.scalar = list(minimum), list(depths), bool(scalar)

    @classmethod
    def for_spec(cls, spec: Any, name: str = "one_hot_observation") -> OneHotObservation:
        low, depths = ranges(spec)
        return cls(low.tolist(), depths.tolist(), spec.shape.rank == 0, name=name)

    def call(self, observation: tf.Tensor) -> tf.Tensor:
        x = tf.cast(observation, tf.int64)
        if self.scalar:
            x = x[..., None]
        parts = [
            tf.one_hot(x[..., i] - low, depth, dtype=tf.float32)
            for i, (low, depth) in enumerate(zip(self.minimum, self.depths))
        ]
        return parts[0] if len(parts) == 1 else tf.concat(parts, axis=-1)

    def compute_output_shape(self, input_shape: Any) -> tf.TensorShape:
        outer = tf.TensorShape(input_shape)
        outer = outer if self.scalar else outer[:-1]
        return outer.concatenate([sum(self.depths)])

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "minimum": self.minimum,
            "depths": self.depths,
            "scalar": self.scalar,
        }
