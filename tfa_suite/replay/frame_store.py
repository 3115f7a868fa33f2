"""A uniform replay buffer that stores each frame of a frame-stacked observation once.

TF-Agents' `TFUniformReplayBuffer` stores every observation whole: with Atari's 84x84x4
uint8 stacks that is 28,224 bytes per transition, four copies of each frame.
`FrameStoreReplay` keeps only the newest frame of each observation (7,056 bytes at 84x84)
and rebuilds the K-frame stacks when it samples, so a transition costs about a quarter.

Storage, per parallel env `e` and item id `t` (ids count `add_batch` calls from 0):

- `frames`: [(max_length + K - 1) * batch_size + 1, *frame_shape], row
  `(t mod (max_length + K - 1)) * batch_size + e` holds `observation[..., K-1]` of item t.
  The K - 1 extra slots keep the older frames the oldest retained item's stack needs; the
  one extra last row is never written and stays zero (the padding frame).
- every other Trajectory field (step_type, action, policy_info, next_step_type, reward,
  discount): [max_length * batch_size, *shape] in its spec's dtype, row
  `(t mod max_length) * batch_size + e`.
- `ages`: uint8 per item, how many earlier frames of the same episode precede it, clipped
  to K - 1 (0 for an episode's FIRST item). That is all the episode bookkeeping needed:
  slot K-1-j of an item's stack holds frame t-j when j <= age, else padding.
- counters: `last_id` (id of the newest item, -1 when empty) and `env_ages` (age of each
  env's newest item), so a restored checkpoint continues episodes correctly.

Stacks are rebuilt with the convention the environment uses for the slots older than an
episode's first frame: `reset_padding="zeros"` (ale-py's `AtariVectorEnv`: right after a
reset the stack is [0, 0, 0, f0]) or `"first"` (copies of the first frame, e.g.
gymnasium's `FrameStackObservation(padding_type="reset")`). Frames of a previous episode
never appear in a stack.

Everything is TF ops on variables created under `tf.device(device)`: `add_batch` works as a
`DynamicStepDriver` observer and `get_next` inside `tf.function`s and `tf.while_loop`s, and
a `tf.train.Checkpoint` holding the buffer saves and restores its whole state. All writes
and reads are ResourceScatterUpdate / ResourceGather on the variables, which have GPU
kernels for uint8.
"""

from __future__ import annotations

import collections

import tensorflow as tf
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory
from tf_agents.utils import nest_utils

# Like TF-Agents' BufferInfo (ids, probabilities), plus the env (batch row) of each sample.
SampleInfo = collections.namedtuple("SampleInfo", ["ids", "env_ids", "probabilities"])

RESET_PADDINGS = ("zeros", "first")


def _nbytes(variable: tf.Variable) -> int:
    return int(variable.shape.num_elements()) * variable.dtype.size


class FrameStoreReplay(tf.Module):
    """Uniform replay of Trajectories whose observation is a stack of K frames.

    Args:
        data_spec: the agent's `collect_data_spec`, a `Trajectory` of TensorSpecs whose
            observation is a single spec of shape [..., K] (e.g. [H, W, K] uint8), the
            newest frame at index K-1 of the last axis.
        batch_size: number of parallel envs; `add_batch` takes items with this leading dim.
        max_length: capacity per env, in items (transitions).
        stack: K, the number of frames per observation (the observation's last dim).
        device: where the variables (and the buffer's ops) live.
        reset_padding: what the env puts in stack slots older than an episode's first
            frame: "zeros" (ale-py) or "first" (copies of the first frame).
        seed: None samples with `tf.random.uniform` (driven by `tf.random.set_seed`, like
            TFUniformReplayBuffer); an int samples from a `tf.random.Generator` whose state
            is a variable, so a restored checkpoint continues the same sample stream.
        name: module name.
    """

    def __init__(
        self,
        data_spec: trajectory.Trajectory,
        batch_size: int,
        max_length: int,
        stack: int,
        device: str = "/CPU:0",
        reset_padding: str = "zeros",
        seed: int | None = None,
        name: str = "frame_store_replay",
    ):
        super().__init__(name=name)
        if not isinstance(data_spec, trajectory.Trajectory):
            raise TypeError(f"data_spec must be a tf_agents Trajectory, got {type(data_spec)}")
        obs_spec = data_spec.observation
        if not isinstance(obs_spec, tf.TensorSpec):
            raise TypeError(f"the observation spec must be one TensorSpec, got {obs_spec}")
        if obs_spec.shape.rank is None or obs_spec.shape.rank < 1:
            raise ValueError(f"the observation spec needs a frame-stack axis: {obs_spec}")
        if not obs_spec.shape.is_fully_defined():
            raise ValueError(f"the observation spec must have a static shape: {obs_spec}")
        if obs_spec.shape[-1] != stack:
            raise ValueError(
                f"stack={stack}, but the observation spec's last dim is {obs_spec.shape[-1]}"
            )
        if not 1 <= stack <= 255:
            raise ValueError(f"stack must be in [1, 255], got {stack}")
        if batch_size < 1 or max_length < 1:
            raise ValueError(f"batch_size and max_length must be >= 1: {batch_size}, {max_length}")
        if reset_padding not in RESET_PADDINGS:
            raise ValueError(f"reset_padding must be one of {RESET_PADDINGS}: {reset_padding!r}")

        self._data_spec = data_spec
        self._batch_size = int(batch_size)
        self._max_length = int(max_length)
        self._stack = int(stack)
        self._device = device
        self._reset_padding = reset_padding
        self._frame_shape = obs_spec.shape[:-1]
        # Frame slots per env: K - 1 more than items, so the oldest retained item's stack
        # still has its older frames.
        self._frame_slots = self._max_length + self._stack - 1
        self._zero_row = self._frame_slots * self._batch_size
        # Every field but the observation, flattened (policy_info may be () or a nest).
        self._other_spec = data_spec._replace(observation=())
        self._other_specs = tf.nest.flatten(self._other_spec)

        items = self._max_length * self._batch_size
        with tf.device(device), tf.name_scope(name):
            self._frames = tf.Variable(
                lambda: tf.zeros(
                    [self._zero_row + 1, *self._frame_shape.as_list()], obs_spec.dtype
                ),
                trainable=False,
                name="frames",
            )
            self._fields = [
                tf.Variable(
                    lambda spec=spec: tf.zeros([items, *spec.shape.as_list()], spec.dtype),
                    trainable=False,
                    name=f"field_{i}",
                )
                for i, spec in enumerate(self._other_specs)
            ]
            self._ages = tf.Variable(
                lambda: tf.zeros([items], tf.uint8), trainable=False, name="ages"
            )
            self._last_id = tf.Variable(tf.constant(-1, tf.int64), trainable=False, name="last_id")
            # -1: nothing added yet, so an env's first item has no earlier frames even if
            # it is not a FIRST step.
            self._env_ages = tf.Variable(
                tf.fill([self._batch_size], tf.constant(-1, tf.int32)),
                trainable=False,
                name="env_ages",
            )
            self._rng = None if seed is None else tf.random.Generator.from_seed(seed)

    # -- properties -------------------------------------------------------------------

    @property
    def data_spec(self) -> trajectory.Trajectory:
        return self._data_spec

    @property
    def capacity(self) -> int:
        return self._max_length * self._batch_size

    @property
    def batch_size(self) -> int:
        return self._batch_size

    @property
    def max_length(self) -> int:
        return self._max_length

    @property
    def stack(self) -> int:
        return self._stack

    @property
    def device(self) -> str:
        return self._device

    @property
    def reset_padding(self) -> str:
        return self._reset_padding

    def storage_variables(self) -> list[tf.Variable]:
        """Every variable the buffer allocates (data and counters)."""
        return [self._frames, *self._fields, self._ages, self._last_id, self._env_ages]

    def bytes_per_transition(self) -> float:
        """Bytes of variables allocated, divided by the capacity in transitions."""
        total = sum(_nbytes(v) for v in self.storage_variables())
        return total / self.capacity

    # -- the ReplayBuffer interface the loop uses -------------------------------------

    def num_frames(self) -> tf.Tensor:
        """Items currently stored (all envs), like TFUniformReplayBuffer.num_frames()."""
        with tf.device(self._device):
            written = (self._last_id.read_value() + 1) * self._batch_size
            return tf.minimum(written, tf.constant(self.capacity, tf.int64))

    def add_batch(self, items: trajectory.Trajectory):
        """Writes one item per env: the newest frame plus the small fields."""
        nest_utils.assert_same_structure(items, self._data_spec)
        items = tf.nest.map_structure(tf.convert_to_tensor, items)
        with tf.device(self._device), tf.name_scope(f"{self.name}/add_batch"):
            id_ = tf.convert_to_tensor(self._last_id.assign_add(1))
            envs = tf.range(self._batch_size, dtype=tf.int64)
            item_rows = tf.math.floormod(id_, self._max_length) * self._batch_size + envs
            frame_rows = tf.math.floormod(id_, self._frame_slots) * self._batch_size + envs

            is_first = tf.equal(tf.cast(items.step_type, tf.int32), int(ts.StepType.FIRST))
            grown = tf.minimum(self._env_ages.read_value() + 1, self._stack - 1)
            ages = tf.where(is_first, tf.zeros_like(grown), grown)

            newest = items.observation[..., self._stack - 1]
            ops = [
                self._env_ages.assign(ages),
                self._frames.scatter_update(tf.IndexedSlices(newest, frame_rows)),
                self._ages.scatter_update(tf.IndexedSlices(tf.cast(ages, tf.uint8), item_rows)),
            ]
            for variable, value in zip(
                self._fields, tf.nest.flatten(items._replace(observation=()))
            ):
                ops.append(variable.scatter_update(tf.IndexedSlices(value, item_rows)))
            return tf.group(*ops)

    def get_next(
        self,
        sample_batch_size: int | None = None,
        num_steps: int | None = None,
        time_stacked: bool = True,
    ):
        """Samples windows of `num_steps` consecutive items uniformly over (env, start).

        Returns `(experience, SampleInfo)` shaped like TFUniformReplayBuffer.get_next:
        fields [B, T, ...] (no B axis when `sample_batch_size` is None, no T axis when
        `num_steps` is None, a tuple of T items when `time_stacked` is False).
        Raises InvalidArgumentError when fewer than `num_steps` items per env are stored.
        """
        steps = 1 if num_steps is None else int(num_steps)
        if not 1 <= steps <= self._max_length:
            raise ValueError(f"num_steps={num_steps} must be in [1, max_length={self._max_length}]")
        rows = 1 if sample_batch_size is None else int(sample_batch_size)
        k = self._stack
        with tf.device(self._device), tf.name_scope(f"{self.name}/get_next"):
            count = self._last_id.read_value() + 1
            min_id = tf.maximum(count - self._max_length, 0)
            max_id = count - steps + 1  # exclusive
            check = tf.debugging.assert_less(
                min_id,
                max_id,
                message=f"FrameStoreReplay holds fewer than num_steps={steps} items per env; "
                "add items before sampling",
            )
            with tf.control_dependencies([check]):
                starts = self._uniform([rows], min_id, max_id)
                env_ids = self._uniform([rows], tf.constant(0, tf.int64), self._batch_size)
            probability = 1.0 / tf.cast((max_id - min_id) * self._batch_size, tf.float32)

            ids = starts[:, None] + tf.range(steps, dtype=tf.int64)[None, :]  # [B, T]
            envs = env_ids[:, None]
            item_rows = tf.math.floormod(ids, self._max_length) * self._batch_size + envs
            others = [tf.gather(v, item_rows) for v in self._fields]

            # Stack slot s (0..K-1) of item t holds frame t - lag, lag = K-1-s, when the
            # episode has that frame (lag <= age); otherwise padding.
            ages = tf.cast(tf.gather(self._ages, item_rows), tf.int64)[..., None]  # [B, T, 1]
            lags = tf.range(k - 1, -1, -1, dtype=tf.int64)  # [K]
            if self._reset_padding == "first":
                frame_ids = ids[..., None] - tf.minimum(lags, ages)
            else:
                frame_ids = ids[..., None] - lags
            frame_rows = (
                tf.math.floormod(frame_ids, self._frame_slots) * self._batch_size + envs[..., None]
            )
            if self._reset_padding == "zeros":
                zero_row = tf.constant(self._zero_row, tf.int64)
                pass
            frames = tf.gather(self._frames, frame_rows)  # [B, T, K, *frame]
            rank = len(frames.shape)
            observation = tf.transpose(frames, [0, 1, *range(3, rank), 2])

            experience = tf.nest.pack_sequence_as(self._other_spec, others)
            experience = experience._replace(observation=observation)
            info = SampleInfo(ids=ids, env_ids=env_ids, probabilities=tf.fill([rows], probability))

            if sample_batch_size is None:
                experience, info = tf.nest.map_structure(lambda x: x[0], (experience, info))
                time_axis = 0
            else:
                time_axis = 1
            if num_steps is None:
                experience = tf.nest.map_structure(lambda x: tf.squeeze(x, time_axis), experience)
                info = info._replace(ids=tf.squeeze(info.ids, time_axis))
            elif not time_stacked:
                experience = tuple(
                    tf.nest.map_structure(
                        lambda x, i=i: x[:, i] if time_axis == 1 else x[i], experience
                    )
                    for i in range(steps)
                )
            return experience, info

    def _uniform(self, shape, minval, maxval) -> tf.Tensor:
        """Integers uniform in [minval, maxval)."""
        maxval = tf.cast(maxval, tf.int64)
        if self._rng is None:
            return tf.random.uniform(shape, minval=minval, maxval=maxval, dtype=tf.int64)
        return self._rng.uniform(shape, minval=minval, maxval=maxval, dtype=tf.int64)


__all__ = ["FrameStoreReplay", "RESET_PADDINGS", "SampleInfo"]
