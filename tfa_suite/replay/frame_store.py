"""A uniform replay buffer that stores each frame of a frame-stacked observation once.

TF-Agents' `TFUniformReplayBuffer` stores every observation whole: with Atari's 84x84x4
uint8 stacks that is 28,224 bytes per transition, four copies of each frame.
`FrameStoreReplay` keeps only the newest frame of each observation (7,056 bytes at 84x84)
and rebuilds the K-frame stacks when it samples: about 7.1 KB per transition.

Items have ids t = 0, 1, ... (one per `add_batch` call, the same for all envs). Per
parallel env e it stores:

- the frames, `observation[..., K-1]` of every item, in one of two layouts:
  * "planes" (any dtype, K, padding): `frames` [S * batch_size + 1, *frame_shape], frame t
    of env e in row `(t mod S) * batch_size + e`, S = max_length + K - 1 (the K - 1 extra
    slots keep the older frames the oldest retained item's stack needs). Sampling gathers
    K rows per stack and moves the K axis last (a transpose).
  * "packed" (uint8, K == 4, zero padding, little-endian; what ale-py needs): `words`
    [NB * batch_size + 1, *frame_shape] uint32, each word holding the same pixel of 4
    consecutive frames, frame t in byte `t mod 4` of block `t // 4` (row
    `((t // 4) mod NB) * batch_size + e`, NB = (max_length + 2) // 4 + 2 blocks). A stack
    is two blocks shifted together and byte-masked, and its uint32 words already are the
    channels-last [..., 4] uint8 layout, so there is no transpose: rebuilding stacks is ~3x
    faster than with planes on a CPU.
  In both layouts the last row is never written and stays zero (the padding frame).
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
a `tf.train.Checkpoint` holding the buffer saves and restores its whole state. Reads and
writes are ResourceGather / ResourceScatterUpdate on the variables plus element-wise and
bitwise ops, all of which have GPU kernels for the dtypes used (uint8, uint32, int64).
"""

from __future__ import annotations

import collections
import sys

import tensorflow as tf
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory
from tf_agents.utils import nest_utils

# Like TF-Agents' BufferInfo (ids, probabilities), plus the env (batch row) of each sample.
SampleInfo = collections.namedtuple("SampleInfo", ["ids", "env_ids", "probabilities"])

RESET_PADDINGS = ("zeros", "first")
LAYOUTS = ("auto", "packed", "planes")

_PACK = 4  # frames per uint32 word in the packed layout


def _nbytes(variable: tf.Variable) -> int:
    return int(variable.shape.num_elements()) * variable.dtype.size


def _check_arguments(data_spec, batch_size, max_length, stack, reset_padding, layout) -> bool:  # noqa: ANN001
    """Raises on arguments FrameStoreReplay cannot serve; returns whether the packed
    layout can hold these frames."""
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
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}: {layout!r}")
    packable = (
        obs_spec.dtype == tf.uint8
        and stack == _PACK
        and reset_padding == "zeros"
        and sys.byteorder == "little"
    )
    if layout == "packed" and not packable:
        raise ValueError(
            "layout='packed' needs uint8 observations, stack=4, reset_padding='zeros' "
            "and a little-endian machine"
        )
    return packable


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
        layout: "auto" (packed when possible, else planes), "packed" or "planes"; see the
            module docstring. Both give identical samples.
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
        layout: str = "auto",
        name: str = "frame_store_replay",
    ):
        super().__init__(name=name)
        packable = _check_arguments(data_spec, batch_size, max_length, stack, reset_padding, layout)
        obs_spec = data_spec.observation

        self._data_spec = data_spec
        self._batch_size = int(batch_size)
        self._max_length = int(max_length)
        self._stack = int(stack)
        self._device = device
        self._reset_padding = reset_padding
        self._packed = packable if layout == "auto" else layout == "packed"
        self._frame_shape = obs_spec.shape[:-1].as_list()
        if self._packed:
            # Enough blocks that the frames of every retained item's stack are never in the
            # block being overwritten: NB * 4 > max_length + 2 * 4 - 2.
            self._slots = (self._max_length + _PACK - 2) // _PACK + 2
            frame_dtype = tf.uint32
        else:
            self._slots = self._max_length + self._stack - 1
            frame_dtype = obs_spec.dtype
        self._zero_row = self._slots * self._batch_size
        # Every field but the observation, flattened (policy_info may be () or a nest).
        self._other_spec = data_spec._replace(observation=())
        self._other_specs = tf.nest.flatten(self._other_spec)

        with tf.device(device), tf.name_scope(name):
            self._create_variables(frame_dtype, seed)

    def _create_variables(self, frame_dtype: tf.DType, seed: int | None) -> None:
        """The storage and counters, all zero (ids and env ages -1: nothing added yet)."""
        items = self._max_length * self._batch_size
        self._frames = tf.Variable(
            lambda: tf.zeros([self._zero_row + 1, *self._frame_shape], frame_dtype),
            trainable=False,
            name="words" if self._packed else "frames",
        )
        self._fields = [
            tf.Variable(
                lambda spec=spec: tf.zeros([items, *spec.shape.as_list()], spec.dtype),
                trainable=False,
                name=f"field_{i}",
            )
            for i, spec in enumerate(self._other_specs)
        ]
        self._ages = tf.Variable(lambda: tf.zeros([items], tf.uint8), trainable=False, name="ages")
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
    def layout(self) -> str:
        return "packed" if self._packed else "planes"

    def storage_variables(self) -> list[tf.Variable]:
        """Every variable the buffer allocates for data and counters."""
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

            is_first = tf.equal(tf.cast(items.step_type, tf.int32), int(ts.StepType.FIRST))
            grown = tf.minimum(self._env_ages.read_value() + 1, self._stack - 1)
            ages = tf.where(is_first, tf.zeros_like(grown), grown)

            ops = [
                self._env_ages.assign(ages),
                self._write_frames(id_, envs, items.observation[..., self._stack - 1]),
                self._ages.scatter_update(tf.IndexedSlices(tf.cast(ages, tf.uint8), item_rows)),
            ]
            values = tf.nest.flatten(items._replace(observation=()))
            for variable, value in zip(self._fields, values):
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
            experience, ids = self._read_windows(starts, env_ids, steps)
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

    def last_id(self) -> tf.Tensor:
        """The id of the newest item (-1 when empty); item t of every env was added together."""
        return self._last_id.read_value()

    def read_windows(self, starts: tf.Tensor, env_ids: tf.Tensor, steps: int):
        """Items `starts[b] .. starts[b] + steps - 1` of env `env_ids[b]`, as [B, T, ...].

        The caller picks valid windows (stored, not overwritten); prioritized replay
        draws them by priority with this.
        """
        with tf.device(self._device), tf.name_scope(f"{self.name}/read_windows"):
            return self._read_windows(starts, env_ids, steps)[0]

    def _read_windows(self, starts: tf.Tensor, env_ids: tf.Tensor, steps: int):
        ids = starts[:, None] + tf.range(steps, dtype=tf.int64)[None, :]  # [B, T]
        envs = env_ids[:, None]
        item_rows = tf.math.floormod(ids, self._max_length) * self._batch_size + envs
        others = [tf.gather(v, item_rows) for v in self._fields]
        ages = tf.cast(tf.gather(self._ages, item_rows), tf.int64)  # [B, T]
        observation = self._read_stacks(ids, envs, ages)
        experience = tf.nest.pack_sequence_as(self._other_spec, others)
        return experience._replace(observation=observation), ids

    # -- frame storage ----------------------------------------------------------------

    def _write_frames(self, id_: tf.Tensor, envs: tf.Tensor, newest: tf.Tensor):
        """Stores frame `id_` of every env ([batch_size, *frame_shape])."""
        if not self._packed:
            rows = tf.math.floormod(id_, self._slots) * self._batch_size + envs
            return self._frames.scatter_update(tf.IndexedSlices(newest, rows))
        rows = tf.math.floormod(id_ // _PACK, self._slots) * self._batch_size + envs
        shift = tf.cast(tf.math.floormod(id_, _PACK) * 8, tf.uint32)
        # Keep the block's earlier frames (bytes below `shift`), drop the stale bytes above
        # it (frames of the block's previous lap), put the new frame in its byte.
        keep = tf.bitwise.left_shift(tf.constant(1, tf.uint32), shift) - 1
        old = tf.gather(self._frames, rows)
        word = tf.bitwise.bitwise_or(
            tf.bitwise.bitwise_and(old, keep),
            tf.bitwise.left_shift(tf.cast(newest, tf.uint32), shift),
        )
        return self._frames.scatter_update(tf.IndexedSlices(word, rows))

    def _read_stacks(self, ids: tf.Tensor, envs: tf.Tensor, ages: tf.Tensor) -> tf.Tensor:
        """The K-frame stacks of items `ids` [B, T] of envs `envs` [B, 1]: [B, T, ..., K]."""
        k = self._stack
        zero_row = tf.constant(self._zero_row, tf.int64)
        if self._packed:
            return self._read_packed(ids, envs, ages, zero_row)
        # Slot s (0..K-1) holds frame t - lag, lag = K-1-s, when the episode has it
        # (lag <= age); otherwise padding: zeros, or the episode's first frame t - age.
        lags = tf.range(k - 1, -1, -1, dtype=tf.int64)  # [K]
        ages = ages[..., None]
        if self._reset_padding == "first":
            frame_ids = ids[..., None] - tf.minimum(lags, ages)
        else:
            frame_ids = ids[..., None] - lags
        rows = tf.math.floormod(frame_ids, self._slots) * self._batch_size + envs[..., None]
        if self._reset_padding == "zeros":
            rows = tf.where(lags <= ages, rows, zero_row)
        frames = tf.gather(self._frames, rows)  # [B, T, K, *frame]
        rank = len(frames.shape)
        return tf.transpose(frames, [0, 1, *range(3, rank), 2])

    def _read_packed(self, ids, envs, ages, zero_row) -> tf.Tensor:
        # Item t is byte s = t mod 4 of block c = t // 4. Its stack (frames t-3..t, newest
        # in byte 3) is block c shifted up by 3 - s bytes, OR block c - 1 shifted down by
        # s + 1 bytes; then bytes for frames before the episode start are masked to 0.
        block = tf.math.floordiv(ids, _PACK)
        pos = tf.math.floormod(ids, _PACK)
        current = tf.math.floormod(block, self._slots) * self._batch_size + envs
        previous = tf.math.floormod(block - 1, self._slots) * self._batch_size + envs
        # The previous block contributes nothing when s == 3 (a shift by 4 bytes is not
        # defined for uint32): read the zero row instead.
        previous = tf.where(pos == _PACK - 1, zero_row, previous)
        eight = tf.constant(8, tf.uint32)
        pos = tf.cast(pos, tf.uint32)[..., None, None]
        ages = tf.cast(ages, tf.uint32)[..., None, None]
        words = tf.bitwise.bitwise_or(
            tf.bitwise.left_shift(tf.gather(self._frames, current), eight * (_PACK - 1 - pos)),
            # s + 1 <= 3 whenever the row is not the zero row, which shifts to 0 anyway.
            tf.bitwise.right_shift(
                tf.gather(self._frames, previous), eight * tf.minimum(pos + 1, _PACK - 1)
            ),
        )
        # Keep bytes 3 - age .. 3 (ages are clipped to 3, so age 3 keeps all four).
        dropped = tf.bitwise.left_shift(tf.constant(1, tf.uint32), eight * (_PACK - 1 - ages)) - 1
        words = tf.bitwise.bitwise_and(words, tf.bitwise.invert(dropped))
        return tf.bitcast(words, tf.uint8)  # little-endian: byte j is stack slot j

    def _uniform(self, shape, minval, maxval) -> tf.Tensor:
        """Integers uniform in [minval, maxval)."""
        maxval = tf.cast(maxval, tf.int64)
        if self._rng is None:
            return tf.random.uniform(shape, minval=minval, maxval=maxval, dtype=tf.int64)
        return self._rng.uniform(shape, minval=minval, maxval=maxval, dtype=tf.int64)


__all__ = ["LAYOUTS", "RESET_PADDINGS", "FrameStoreReplay", "SampleInfo"]
