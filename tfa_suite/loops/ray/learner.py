"""Scale-out of the replay loop: N Ray actor processes collect, one learner trains.

`--num_actors=N` (N > 0) swaps the replay loop's single-process compiled collect-train
function for `RayLearnerLoop`, which the session drives through the same `Loop` interface,
so checkpoints, evaluation, resume and every run output stay as they are. It keeps the
replay loop's core (`ReplayCore`: the replay, its sampler, the train step) and adds the
actors. docs/scale-out.md describes the design, its measured costs and how far it scales.

- **Actors** (`tfa_suite.loops.ray.worker.CollectWorker`, one Ray actor process each)
  hold a batched env of `--num_envs` copies and the agent's collect policies. Each call
  steps `--actor_steps_per_call` env steps and returns numpy trajectories. The learner
  keeps one call in flight per actor and gathers them with `ray.wait`.
- **Weights** travel by version: after training, the learner `ray.put`s the policy's
  variables once per version, and an actor fetches them only when its call carries a
  version newer than the one it holds.
- **Replay**: one row per env of every actor (N x num_envs rows), so each row holds one
  env's steps in order and every sampled window is a real stretch of one episode. A
  TF-Agents replay adds to all rows at once, so segments are added in rounds: the k-th
  call of every actor, together. A restarted actor begins new episodes in its rows, which
  leaves a seam per env there, as a resumed python-env run does; the DQN family gives
  windows across a seam weight 0 (`tfa_suite.agents.nstep`).
- **Replay ratio**: the learner makes `--replay_ratio` gradient steps per env step
  collected after the initial collection (by default the single-process ratio,
  `--train_steps_per_iteration / --collect_steps_per_iteration`). It never trains ahead
  of the data, and when it falls behind, actors wait (no new call) once the learner's
  backlog passes about two rounds of calls, so the ratio holds either way.
- **Faults**: a call that fails (its actor process died, or its env raised) is reported
  on one line and its actor replaced by a fresh one, which redoes that call; nothing in
  the replay is lost and no counter goes back. `--actor_max_restarts` failures of one
  actor in a row end the run with a one-line error.
- **Only the learner writes**: checkpoints, metrics and summaries. Killing the learner
  and rerunning the command resumes from its newest checkpoint, with new actors.

Ray is optional (`make install-ray`, requirements/ray-lock.txt): nothing here imports it
until a loop is built with `--num_actors > 0`. The package's modules: `config` (the
section), `runtime` (starting Ray), `pool` (the actor processes), `worker` (inside an
actor) and this learner.
"""

from __future__ import annotations

import collections
import math
import time
from typing import Any

import numpy as np
import tensorflow as tf

from tfa_suite.errors import UserError
from tfa_suite.loops.base import LoopBase, LoopInputs
from tfa_suite.loops.ray.config import RayConfig
from tfa_suite.loops.ray.pool import ActorPool, Call, Weights
from tfa_suite.loops.ray.runtime import Sentinel, import_ray, init_ray
from tfa_suite.loops.ray.worker import ActorRecipe
from tfa_suite.loops.replay import ReplayConfig, ReplayCore

# How long one ray.wait blocks when the learner has nothing to train: short enough that a
# dead actor is noticed and replaced within about a second.
POLL_SECONDS = 1.0


class ReplayRatio:
    """Gradient steps per env step, counted from an origin (env steps, train steps).

    The origin is the end of the initial collection, so the ratio resumes from the
    checkpointed counters alone; a refill after a resume moves it (refilled steps earn no
    gradient steps, as in the single-process loop).
    """

    def __init__(self, ratio: float, env_steps: int, train_steps: int = 0):
        self.ratio = ratio
        self.origin = (env_steps, train_steps)

    def restart(self, env_steps: int, train_steps: int, ratio: float | None = None) -> None:
        """Counts from here on, at `ratio` if given."""
        self.ratio = self.ratio if ratio is None else ratio
        self.origin = (env_steps, train_steps)

    def owed(self, env_steps: int, train_steps: int) -> int:
        """Gradient steps the ratio allows at these counts and not made yet."""
        steps, updates = self.origin
        collected = max(0, env_steps - steps)
        return max(0, math.floor(self.ratio * collected) - (train_steps - updates))


class RayLearnerLoop(LoopBase):
    """The learner: the replay loop's core, trained in compiled calls, fed by Ray actors."""

    def __init__(
        self, cfg: ReplayConfig, ray_cfg: RayConfig, inputs: LoopInputs, recipe: ActorRecipe
    ):
        super().__init__(name="actor_replay_loop")
        built = inputs.built
        if ray_cfg.actor_exploration == "apex" and built.hooks.actor_collect_policy is None:
            raise UserError(
                f"--actor_exploration=apex needs per-actor exploration from the agent, and "
                f"{inputs.agent_name} has none; use --actor_exploration=shared"
            )
        self._ray = import_ray()
        self._cfg, self._ray_cfg, self._recipe = cfg, ray_cfg, recipe
        self._count = ray_cfg.num_actors
        self._envs_per_actor = inputs.tf_env.batch_size
        rows = self._count * self._envs_per_actor
        self.core = ReplayCore(cfg, built, inputs.env_steps, rows, inputs)
        self.env_steps = inputs.env_steps
        self.episodes, self.train_return = self.core.episodes, self.core.train_return
        self._device = inputs.device
        self._train_step = built.agent.train_step_counter
        self.policy_variables = built.greedy_policy.variables()
        self.ratio = ReplayRatio(ray_cfg.ratio(cfg), cfg.initial_collect_steps)
        self._call_steps = math.ceil(ray_cfg.actor_steps_per_call / self._envs_per_actor)
        self._chunk = max(1, cfg.train_steps_per_iteration)
        self._data_spec = built.agent.collect_data_spec
        self._add_round = tf.function(
            self._add_items,
            input_signature=[
                tf.TensorSpec([None, rows, *s.shape], s.dtype)
                for s in tf.nest.flatten(self._data_spec)
            ],
            autograph=False,
        )
        self.pool: ActorPool | None = None
        self._started_ray = False
        self._sentinel: Sentinel | None = None
        self._queues: list[collections.deque] = [collections.deque() for _ in range(self._count)]
        self._version = 0  # of the policy weights; bumped by every train call
        self._put: tuple[int, Any] | None = None  # (version, ObjectRef) last sent
        self._last_loss = 0.0
        # Per-actor throughput and the learner's update rate, per metrics row.
        self.perf_fields = tuple(f"actor{i}_env_steps_per_sec" for i in range(self._count)) + (
            "learner_updates_per_sec",
        )
        self._perf_time = time.monotonic()
        self._perf_steps = [0] * self._count
        self._perf_updates = 0

    # --- the Loop interface ----------------------------------------------------------

    def env_step_count(self) -> int:
        return int(self.env_steps.result())

    def train_step_count(self) -> int:
        return int(self._train_step.numpy())

    def checkpoint_objects(self) -> dict[str, tf.Module]:
        return self.core.checkpoint_objects()

    def prefill_steps(self) -> int:
        return self.core.prefill_steps()

    def resume_note(self) -> str:
        return self.core.resume_note()

    def start(self) -> None:
        """Starts (or joins) Ray and the actors; `train` calls it before the run dir opens."""
        self._started_pool()

    def prefill(self, num_env_steps: int) -> int:
        """Collection without training up to env step `num_env_steps`, in whole rounds.

        Each round asks every actor for an equal share of what is missing; it runs before
        any steady call, so nothing else is in flight. As in the single-process loop, the
        initial-collect policy acts before `initial_collect_steps` and the collect policy
        (a refill after a resume) after.
        """
        pool = self._started_pool()
        if pool.in_flight:
            raise RuntimeError("prefill with collect calls in flight")
        refill = self.env_step_count() >= self._cfg.initial_collect_steps
        while self.env_step_count() < num_env_steps:
            steps = self.env_step_count()
            share = math.ceil((num_env_steps - steps) / (self._count * self._envs_per_actor))
            initial = steps < self._cfg.initial_collect_steps
            for index in range(self._count):
                pool.launch(Call(index, share, initial, steps), self.weights())
            while pool.in_flight:
                self._take(pool.wait(POLL_SECONDS))
            self._add_ready_rounds()
        if refill:
            # A resume without a checkpointed replay refills it; as in the single-process
            # loop those steps earn no gradient steps, so the ratio counts from here.
            self.ratio.restart(self.env_step_count(), self.train_step_count())
        return self.env_step_count()

    def iterations_within(self, remaining: int) -> int:
        """One iteration is one env step here: `run(k)` collects until k more are in.

        A call then ends within one round (`num_actors x actor_steps_per_call` env steps)
        past its event.
        """
        return max(1, remaining)

    def run(self, num_iterations: int) -> float:
        """Trains and adds the actors' rounds until `num_iterations` more env steps are in.

        It returns once the replay ratio is met for all data added, so at that point
        `train_steps == floor(ratio x (env_steps - initial_collect_steps))`. Returns the
        mean loss of this call's gradient steps (the previous call's if it made none).
        """
        pool = self._started_pool()
        target = self.env_step_count() + num_iterations
        loss_sum, updates = 0.0, 0
        # Until the target is in, and then until the learner has made every gradient step
        # the data allows: each call ends with the replay ratio met exactly, so every
        # metrics row, evaluation and checkpoint sees it. Actors keep collecting meanwhile.
        while self.env_step_count() < target or self._owed() > 0:
            self._launch_idle(pool)
            self._take(pool.wait(0.0 if self._owed() > 0 else POLL_SECONDS))
            if self.env_step_count() < target:
                self._add_ready_rounds()
            owed = self._owed()
            if owed > 0:
                n = min(owed, self._chunk)
                loss_sum += self._train_chunk(n) * n
                updates += n
        if updates:
            self._last_loss = loss_sum / updates
        return self._last_loss

    def perf_values(self) -> dict[str, float]:
        """Env steps/s that each actor delivered, and updates/s, since the previous row."""
        now = time.monotonic()
        elapsed = max(now - self._perf_time, 1e-9)
        values = {
            f"actor{i}_env_steps_per_sec": steps / elapsed
            for i, steps in enumerate(self._perf_steps)
        }
        values["learner_updates_per_sec"] = self._perf_updates / elapsed
        self._perf_time, self._perf_steps, self._perf_updates = now, [0] * self._count, 0
        return values

    def close(self) -> None:
        """Stops the actors, and the local Ray if this loop started it."""
        if self.pool is not None:
            self.pool.close()
            self.pool = None
        self._put = None
        if self._sentinel is not None:
            self._sentinel.stand_down()
            self._sentinel = None
        if self._started_ray:
            self._ray.shutdown()
            self._started_ray = False

    # --- learner internals -------------------------------------------------------------

    def _started_pool(self) -> ActorPool:
        if self.pool is None:
            self._started_ray = init_ray(self._ray_cfg.ray_address, self._count)
            self._sentinel = Sentinel.start(self._ray)
            pool = ActorPool(
                self._ray, self._ray_cfg, self._recipe, self.env_step_count, self.weights
            )
            self.pool = pool
            pool.start()
        return self.pool

    def weights(self) -> Weights:
        """(version, [ObjectRef]) of the current policy weights; one `ray.put` per version."""
        if self._put is None or self._put[0] != self._version:
            values = [v.numpy() for v in self.policy_variables]
            self._put = (self._version, self._ray.put(values))
        return self._put[0], [self._put[1]]

    def _owed(self) -> int:
        return self.ratio.owed(self.env_step_count(), self.train_step_count())

    def _pending_steps(self, pool: ActorPool) -> int:
        """Env steps in flight or waiting for their round (at most; boundaries count less)."""
        queued = sum(len(q) for q in self._queues)
        return (len(pool.in_flight) + queued) * self._call_steps * self._envs_per_actor

    def _launch_idle(self, pool: ActorPool) -> None:
        """A new call for every idle actor, unless the learner is too far behind.

        The learner's backlog (owed steps plus what pending data will owe) may grow to
        about two rounds of calls; past that, actors wait for it. An actor whose queue is
        empty always gets its call: the next round waits for it.
        """
        per_call = self._call_steps * self._envs_per_actor
        ratio = self.ratio.ratio
        limit = ratio * 2 * self._count * per_call
        for index in range(self._count):
            if not pool.idle(index):
                continue
            backlog = self._owed() + ratio * (self._pending_steps(pool) + per_call)
            if self._queues[index] and ratio > 0 and backlog > limit:
                continue
            steps = self.env_step_count() + self._pending_steps(pool)
            pool.launch(Call(index, self._call_steps, False, steps), self.weights())

    def _take(self, done: list[tuple[Call, dict[str, Any]]]) -> None:
        for call, result in done:
            self._queues[call.actor].append(result)
            self._perf_steps[call.actor] += result["env_steps"]

    def _add_ready_rounds(self) -> None:
        """Adds every complete round (one segment of each actor) to the replay, in order."""
        while all(self._queues):
            segments = [q.popleft() for q in self._queues]
            fields = [
                np.concatenate([s["items"][k] for s in segments], axis=1)
                for k in range(len(segments[0]["items"]))
            ]
            self._add_round(*fields)

    def _train_chunk(self, train_steps: int) -> float:
        """`train_steps` gradient steps; a new policy version for the actors' next calls."""
        loss = float(self.train_only(tf.constant(train_steps, tf.int64)))
        self._perf_updates += train_steps
        self._version += 1
        return loss

    def _add_items(self, *fields: tf.Tensor) -> tf.Tensor:
        """Adds [T, rows] trajectory fields step by step, through the replay core's observers."""
        items = tf.nest.pack_sequence_as(self._data_spec, list(fields))
        length = tf.shape(fields[0])[0]
        observers = self.core.observers

        def body(t: tf.Tensor) -> tf.Tensor:
            item = tf.nest.map_structure(lambda x: x[t], items)
            for observer in observers:
                observer(item)  # stateful: kept and ordered by the loop body
            return t + 1

        with tf.device(self._device):
            return tf.while_loop(lambda t: t < length, body, [tf.constant(0)])

    @tf.function(autograph=False)
    def train_only(self, train_steps: tf.Tensor) -> tf.Tensor:
        """`train_steps` gradient steps on replay samples; returns their mean loss."""
        with tf.device(self._device):
            _, loss_sum = tf.while_loop(
                lambda j, _: j < train_steps,
                self.core.train_body,
                (tf.constant(0, train_steps.dtype), tf.constant(0.0)),
            )
        return loss_sum / tf.maximum(tf.cast(train_steps, tf.float32), 1.0)
