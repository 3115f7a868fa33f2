"""Proportional prioritized replay (Schaul et al. 2016), in TF ops on the training device.

TF-Agents has no prioritized replay outside Reverb, and Reverb is gone from the current
stack (tensorflow/agents#362, #443; PR #629 closed), so this one is the suite's own. It
wraps the storage of either replay the loop uses, TF-Agents' `TFUniformReplayBuffer` or
`FrameStoreReplay`, and changes only which windows are drawn:

- Each (env, slot) of the storage is a leaf of a `SumTree` holding p^alpha, the priority
  of the training window that *starts* there. A window of T items starting at id s is
  valid once item s + T - 1 is stored and until item s is overwritten, so `add_batch` of
  item L sets two leaves per env: the start L - T + 1 becomes valid, at the largest
  priority so far (new data is replayed at least once soon), and slot L, whose old start
  was just overwritten, drops to 0. Invalid windows therefore have probability 0 and no
  mask is needed when sampling.
- `get_next` draws B leaves by stratified sampling (one uniform draw in each of B equal
  slices of the total, as in the paper) and returns importance weights
  w_i = (P(i))^-beta / max_j (P(j))^-beta over the batch (N cancels in the ratio), with
  beta annealed linearly from `beta_start` to 1 over the run.
- `update_priorities(leaves, errors)` sets p = (|error| + epsilon)^alpha. A leaf drawn
  twice in one batch gets the larger of its new priorities (scatter order would be
  arbitrary otherwise).

Why a sum tree and not `cumsum` + `searchsorted`: a cumsum over every leaf per batch is
O(N). `make bench-replay` (2-core CPU, idle) measured 0.66 ms at 100k leaves, level with
the tree's sample *and* update, but 5.4 ms at 1M, where the tree's O(log N) gathers and
scatters take 0.78 ms for both.
Everything is variables and TF ops, so the compiled loop keeps zero host round trips, and
a checkpoint of the replay module holds the priorities too.
"""

from __future__ import annotations

import collections
import math

import tensorflow as tf
from tf_agents.replay_buffers import tf_uniform_replay_buffer

from tfa_suite.replay.frame_store import FrameStoreReplay

PrioritizedInfo = collections.namedtuple("PrioritizedInfo", ["leaves", "weights", "probabilities"])


class SumTree(tf.Module):
    """Non-negative values on `size` leaves, with their sums kept up a binary tree.

    One float32 variable of 2P nodes (P: the next power of two >= size): node 1 is the
    root, node i has children 2i and 2i + 1, and leaf k is node P + k.
    """

    def __init__(self, size: int, device: str = "/CPU:0", name: str = "sum_tree"):
        super().__init__(name=name)
        if size < 1:
            raise ValueError(f"a sum tree needs at least one leaf, not {size}")
        self.size = int(size)
        self.depth = max(1, math.ceil(math.log2(self.size)))
        self._first_leaf = 2**self.depth
        self._device = device
        with tf.device(device):
            self.nodes = tf.Variable(tf.zeros([2 * self._first_leaf], tf.float32), name="nodes")

    def total(self) -> tf.Tensor:
        # A gather, not nodes[1]: slicing reads the whole variable, and a scatter while
        # that read is alive copies all 2P nodes (copy-on-write), ~1 ms at 1M leaves.
        return tf.gather(self.nodes, 1)

    def get(self, leaves: tf.Tensor) -> tf.Tensor:
        return tf.gather(self.nodes, tf.cast(leaves, tf.int64) + self._first_leaf)

    def set(self, leaves: tf.Tensor, values: tf.Tensor) -> tf.Operation:
        """Sets leaves (unique indices) and recomputes their ancestors, level by level."""
        with tf.device(self._device):
            nodes = tf.cast(leaves, tf.int64) + self._first_leaf
            ops = [self.nodes.scatter_nd_update(nodes[:, None], tf.cast(values, tf.float32))]
            for _ in range(self.depth):
                nodes = nodes // 2
                # Siblings share a parent and write it the same sum, so duplicates are fine.
                with tf.control_dependencies(ops[-1:]):
                    sums = tf.gather(self.nodes, 2 * nodes) + tf.gather(self.nodes, 2 * nodes + 1)
                    ops.append(self.nodes.scatter_nd_update(nodes[:, None], sums))
            return tf.group(ops)

    def find(self, targets: tf.Tensor) -> tf.Tensor:
        """The leaf where each cumulative target in [0, total) falls.

        At each level the walk goes right when the target passes the left child's sum and
        the right child holds mass, and the target is kept below the chosen child's sum, so
        float rounding can never land it on a zero-mass leaf.
        """
        with tf.device(self._device):
            node = tf.ones_like(targets, dtype=tf.int64)
            remaining = tf.cast(targets, tf.float32)
            for _ in range(self.depth):
                left = tf.gather(self.nodes, 2 * node)
                right = tf.gather(self.nodes, 2 * node + 1)
                go_right = tf.logical_and(remaining >= left, right > 0)
                remaining = tf.where(go_right, remaining - left, remaining)
                chosen = tf.where(go_right, right, left)
                remaining = tf.minimum(remaining, chosen * (1.0 - 1e-6))
                node = 2 * node + tf.cast(go_right, tf.int64)
            return node - self._first_leaf


class _Storage:
    """A replay read by (start id, env). Leaves are numbered env-major, e * max_length +
    slot, whatever the storage's own row layout; item t of every env sits in slot
    t mod max_length."""

    def __init__(self, buffer):  # noqa: ANN001
        self.buffer = buffer
        self.num_envs = int(buffer._batch_size)  # noqa: SLF001
        self.max_length = int(buffer._max_length)  # noqa: SLF001

    def leaf(self, ids: tf.Tensor, envs: tf.Tensor) -> tf.Tensor:
        return envs * self.max_length + tf.math.floormod(ids, self.max_length)


class _UniformStorage(_Storage):
    """TFUniformReplayBuffer, whose row for item t of env e is e * max_length + t mod
    max_length: a leaf is exactly a buffer row.

    Uses the buffer's `_data_table` and `_get_last_id`, internals of tf-agents 0.19.0
    (pinned in requirements/lock.txt): the public `get_next` only samples uniformly.
    """

    def last_id(self) -> tf.Tensor:
        return self.buffer._get_last_id()  # noqa: SLF001

    def read_windows(self, starts: tf.Tensor, envs: tf.Tensor, steps: int):
        ids = starts[:, None] + tf.range(steps, dtype=tf.int64)[None, :]
        rows = self.leaf(ids, envs[:, None])
        return self.buffer._data_table.read(rows)  # noqa: SLF001


class _FrameStorage(_Storage):
    """FrameStoreReplay, through its own window reads (it rebuilds the frame stacks)."""

    def last_id(self) -> tf.Tensor:
        return self.buffer.last_id()

    def read_windows(self, starts: tf.Tensor, envs: tf.Tensor, steps: int):
        return self.buffer.read_windows(starts, envs, steps)


class PrioritizedReplay(tf.Module):
    """A replay buffer that samples training windows in proportion to their priority.

    Args:
        buffer: the storage, a `TFUniformReplayBuffer` or a `FrameStoreReplay`, built
            with `batch_size` = number of envs; this module adds to and reads from it.
        sequence_length: T, the items per training window (the agent's n + 1).
        alpha: how much priorities count (0 is uniform).
        beta: a callable returning the current importance-sampling exponent.
        epsilon: added to |error| so that no window's priority is zero.
        device: where the tree lives (the storage's device).
    """

    def __init__(
        self,
        buffer,  # noqa: ANN001
        sequence_length: int,
        alpha: float = 0.6,
        beta=lambda: tf.constant(1.0),  # noqa: ANN001
        epsilon: float = 1e-6,
        device: str = "/CPU:0",
        name: str = "prioritized_replay",
    ):
        super().__init__(name=name)
        if isinstance(buffer, FrameStoreReplay):
            self._storage = _FrameStorage(buffer)
        elif isinstance(buffer, tf_uniform_replay_buffer.TFUniformReplayBuffer):
            self._storage = _UniformStorage(buffer)
        else:
            raise TypeError(f"prioritized replay cannot wrap {type(buffer).__name__}")
        if sequence_length > self._storage.max_length:
            raise ValueError(
                f"windows of {sequence_length} items need max_length >= {sequence_length}"
            )
        self.storage = buffer  # tracked, so a checkpoint of this module holds the data too
        self._steps = int(sequence_length)
        self._alpha = float(alpha)
        self._beta = beta
        self._epsilon = float(epsilon)
        self._device = device
        self.tree = SumTree(self._storage.num_envs * self._storage.max_length, device)
        with tf.device(device):
            # The largest p^alpha so far; new windows enter with it.
            self.max_priority = tf.Variable(1.0, name="max_priority")
        self._envs = tf.range(self._storage.num_envs, dtype=tf.int64)

    # -- the ReplayBuffer interface the loop uses -----------------------------------------

    def num_frames(self) -> tf.Tensor:
        return self.storage.num_frames()

    def add_batch(self, items) -> tf.Operation:  # noqa: ANN001
        with tf.device(self._device), tf.name_scope(f"{self.name}/add_batch"):
            added = self.storage.add_batch(items)
            with tf.control_dependencies([added]):
                newest = self._storage.last_id()
            # Slot `newest` no longer starts a valid window: its old start was overwritten.
            cleared = self.tree.set(
                self._storage.leaf(tf.fill([self._storage.num_envs], newest), self._envs),
                tf.zeros([self._storage.num_envs]),
            )
            start = newest - (self._steps - 1)
            with tf.control_dependencies([cleared]):
                leaves = self._storage.leaf(tf.fill([self._storage.num_envs], start), self._envs)
                # Before the first whole window exists, leave the tree as it is.
                values = tf.fill([self._storage.num_envs], self.max_priority.read_value())
                values = tf.where(start >= 0, values, self.tree.get(leaves))
                return self.tree.set(leaves, values)

    def get_next(self, sample_batch_size: int, num_steps: int):
        """B windows drawn in proportion to priority, with their leaves and IS weights."""
        if num_steps != self._steps:
            raise ValueError(f"this replay samples windows of {self._steps} items, not {num_steps}")
        with tf.device(self._device), tf.name_scope(f"{self.name}/get_next"):
            total = self.tree.total()
            check = tf.debugging.assert_positive(
                total, message="prioritized replay holds no whole window yet; add items first"
            )
            with tf.control_dependencies([check]):
                slices = tf.range(sample_batch_size, dtype=tf.float32)
                draws = tf.random.uniform([sample_batch_size])
                targets = (slices + draws) / float(sample_batch_size) * total
            leaves = self.tree.find(targets)
            probabilities = self.tree.get(leaves) / total
            weights = tf.pow(probabilities, -self._beta())
            weights = weights / tf.reduce_max(weights)
            envs = leaves // self._storage.max_length
            slots = tf.math.floormod(leaves, self._storage.max_length)
            newest = self._storage.last_id()
            # The id stored in each slot: the newest id congruent to it.
            starts = newest - tf.math.floormod(newest - slots, self._storage.max_length)
            experience = self._storage.read_windows(starts, envs, self._steps)
            return experience, PrioritizedInfo(leaves, weights, probabilities)

    def update_priorities(self, leaves: tf.Tensor, errors: tf.Tensor) -> tf.Operation:
        """Sets the drawn windows' priorities from the agent's per-sample errors.

        Call it before the next `add_batch`: an add in between can invalidate a drawn
        window (its start overwritten), and this update would then reopen it. The loop
        trains between collections, so this holds there.
        """
        with tf.device(self._device), tf.name_scope(f"{self.name}/update"):
            priorities = tf.pow(tf.abs(tf.cast(errors, tf.float32)) + self._epsilon, self._alpha)
            unique, index = tf.unique(tf.cast(leaves, tf.int64))
            largest = tf.math.unsorted_segment_max(priorities, index, tf.size(unique))
            updated = self.tree.set(unique, largest)
            with tf.control_dependencies([updated]):
                return self.max_priority.assign(
                    tf.maximum(self.max_priority, tf.reduce_max(largest))
                )

    # -- what benchmarks and tests read ---------------------------------------------------

    def priorities(self, leaves: tf.Tensor) -> tf.Tensor:
        """The current p^alpha of `leaves`."""
        return self.tree.get(leaves)

    def leaf(self, ids: tf.Tensor, envs: tf.Tensor) -> tf.Tensor:
        """The leaf of the window starting at item `ids` of env `envs`."""
        return self._storage.leaf(tf.cast(ids, tf.int64), tf.cast(envs, tf.int64))
