"""Scale-out of the replay loop: N Ray actor processes collect, one learner trains.

`--num_actors=N` (N > 0) swaps the replay loop's single-process compiled collect-train
function for `ActorReplayLoop`, which the session drives through the same interface, so
checkpoints, evaluation, resume and every run output stay as they are. docs/scale-out.md
describes the design, its measured costs and how far it scales.

- **Actors** (`tfa_suite.loops.actor_worker.CollectWorker`, one Ray actor process each)
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
until a loop is built with `--num_actors > 0`.
"""

from __future__ import annotations

import collections
import dataclasses
import importlib.util
import logging
import math
import os
import time
from typing import Any, ClassVar

import numpy as np
import tensorflow as tf
from tf_agents.environments import tf_environment
from tf_agents.metrics import tf_metrics

from tfa_suite.agents.registry import BuiltAgent
from tfa_suite.config import RunConfig, TrainConfig, _field, need
from tfa_suite.errors import EnvironmentFailed, UserError
from tfa_suite.loops.actor_worker import failure_line
from tfa_suite.loops.replay import ReplayConfig, ReplayLoop

EXPLORATIONS = ("shared", "apex")
INSTALL_HINT = "install it with `make install-ray` (Ray core, pinned in requirements/ray-lock.txt)"
# Seconds to wait for a new actor's first answer before calling the cluster short of room.
ACTOR_START_TIMEOUT = 300.0
# How long one ray.wait blocks when the learner has nothing to train: short enough that a
# dead actor is noticed and replaced within about a second.
POLL_SECONDS = 1.0


@dataclasses.dataclass
class ActorReplayConfig(ReplayConfig):
    """The replay loop's section: ReplayConfig plus the scale-out fields (all off at 0)."""

    num_actors: int = _field(
        0,
        "Ray actor processes that collect while this process trains (0: the single-process "
        "compiled loop); needs `make install-ray`",
    )
    ray_address: str = _field(
        "",
        "with --num_actors: address of a running Ray cluster to join (ray start --head "
        "prints it); empty starts a local Ray",
    )
    actor_steps_per_call: int = _field(
        1_000,
        "with --num_actors: env steps per collect call of one actor, rounded up to a "
        "multiple of --num_envs; each call returns its trajectories at once",
    )
    replay_ratio: float = _field(
        float("nan"),
        "with --num_actors: gradient steps per env step collected; NaN takes "
        "--train_steps_per_iteration / --collect_steps_per_iteration, 0 only collects",
    )
    actor_exploration: str = _field(
        "shared",
        "with --num_actors: shared (every actor follows the agent's schedule) or apex "
        "(per-actor exploration, e.g. DQN's Ape-X epsilons, see --actor_epsilon)",
    )
    actor_max_restarts: int = _field(
        3, "with --num_actors: failures of one actor in a row before the run stops"
    )

    # Where the cluster runs and how patient to be with failures do not change the
    # experiment. The number of actors does: it is the replay's row count (N x num_envs
    # rows, saved in the checkpoint) and, with apex exploration, every actor's epsilon.
    RESUMABLE: ClassVar[frozenset[str]] = ReplayConfig.RESUMABLE | {
        "ray_address",
        "actor_max_restarts",
    }

    def validate(self, run: RunConfig) -> None:
        super().validate(run)
        need(self.num_actors >= 0, "--num_actors must be >= 0 (0: no Ray actors)")
        if self.num_actors == 0:
            for name, unset in (
                ("ray_address", not self.ray_address),
                ("replay_ratio", math.isnan(self.replay_ratio)),
                ("actor_exploration", self.actor_exploration == "shared"),
            ):
                need(unset, f"--{name} applies only with --num_actors > 0")
            return
        need(ray_installed(), f"--num_actors needs Ray, which is not installed; {INSTALL_HINT}")
        need(self.num_actors <= 1000, "--num_actors must be <= 1000")
        need(self.actor_steps_per_call >= 1, "--actor_steps_per_call must be >= 1")
        need(
            math.isnan(self.replay_ratio)
            or (math.isfinite(self.replay_ratio) and self.replay_ratio >= 0),
            "--replay_ratio must be >= 0 (or NaN for the single-process ratio)",
        )
        need(
            self.actor_exploration in EXPLORATIONS,
            f"--actor_exploration must be shared or apex, not {self.actor_exploration!r}",
        )
        need(self.actor_max_restarts >= 0, "--actor_max_restarts must be >= 0")

    def ratio(self) -> float:
        """Gradient steps per env step: --replay_ratio, or the single-process loop's."""
        if not math.isnan(self.replay_ratio):
            return self.replay_ratio
        return self.train_steps_per_iteration / self.collect_steps_per_iteration


def ray_installed() -> bool:
    try:
        return importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):  # ValueError: sys.modules["ray"] is None
        return False


def import_ray():  # noqa: ANN201
    try:
        import ray
    except ImportError:
        raise UserError(f"--num_actors needs Ray, which is not installed; {INSTALL_HINT}") from None
    return ray


def worker_env_vars() -> dict[str, str]:
    """What every worker process needs in its environment, through Ray's `runtime_env`.

    Keras 2 must be chosen before TensorFlow loads, and a worker must import this package
    and whatever the learner can (a user's `--env=my_pkg.my_mod:MyEnv` from the current
    directory), so the package's parent, the current directory and PYTHONPATH go first on
    its path. On a cluster, every node needs the same stack at the same path.
    """
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    paths = [
        package_parent,
        os.getcwd(),
        *filter(None, os.environ.get("PYTHONPATH", "").split(":")),
    ]
    return {
        "TF_USE_LEGACY_KERAS": "1",
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
        "PYTHONPATH": ":".join(dict.fromkeys(paths)),
    }


def init_ray(address: str = "", num_cpus: int | None = None) -> bool:
    """Starts a local Ray (or joins `address`) unless one is up; True if this call did it.

    - Ray 2.60 turns on token authentication for the clusters it starts and writes the
      token to ~/.ray/auth_token; a local, single-user instance needs none
      (`RAY_AUTH_MODE=disabled`, unless the user chose a mode). Joining a cluster keeps
      the cluster's mode.
    - `log_to_driver=False`: every worker's TensorFlow start-up lines would otherwise be
      copied into the learner's progress output; they stay in Ray's session logs.
    - A local Ray gets at least as many logical CPUs as actors, since each actor reserves
      one: on a 2-core machine, 8 latency-bound actors still all start.
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = dict(
        runtime_env={"env_vars": worker_env_vars()},
        log_to_driver=False,
        logging_level=logging.WARNING,
    )
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
            cpus = max(os.cpu_count() or 1, num_cpus or 0)
            ray.init(num_cpus=cpus, include_dashboard=False, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = f"the Ray cluster at --ray_address={address}" if address else "a local Ray"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"could not start or join {where}: {first}") from None
    _quiet_worker_deaths(ray)
    return True


def _quiet_worker_deaths(ray) -> None:  # noqa: ANN001
    """Drops the raylet's paragraph about a dead worker from the learner's output.

    The pool reports each failed actor in one line and replaces it; Ray's driver prints
    its own long notice of the same death from a thread that `log_to_driver=False` does
    not silence. This filters only those notices (other raylet messages still print),
    through Ray's module-level printer; if a later Ray renames it, nothing is filtered.
    """
    worker_module = getattr(getattr(ray, "_private", None), "worker", None)
    printer = getattr(worker_module, "print_to_stdstream", None)
    if printer is None or getattr(printer, "_tfa_filtered", False):
        return

    def filtered(data, ignore_prefix):  # noqa: ANN001, ANN202
        if data.get("pid") == "raylet" and any(
            "worker died or was killed" in line for line in data.get("lines", [])
        ):
            return None
        return printer(data, ignore_prefix)

    filtered._tfa_filtered = True
    worker_module.print_to_stdstream = filtered


def actor_seed(run_seed: int, index: int, launch: int, env_steps: int) -> int:
    """Seed of actor `index`'s `launch`-th process, started at learner env step `env_steps`.

    Distinct for every actor and every restart, and reproducible from where it started;
    below 2**30 so that the env copies' seeds (seed + copy) stay valid.
    """
    sequence = np.random.SeedSequence([run_seed, index, launch, env_steps])
    return int(sequence.generate_state(1, np.uint32)[0] % (2**30))


@dataclasses.dataclass
class _Call:
    """One collect call of one actor, in flight."""

    actor: int
    num_steps: int  # batched env steps
    initial: bool
    env_steps: int


class _ActorPool:
    """The Ray side: actor processes, their calls in flight, failures and restarts."""

    def __init__(self, ray, config: TrainConfig, loop: ActorReplayLoop):  # noqa: ANN001
        from tfa_suite.loops.actor_worker import CollectWorker

        self._ray = ray
        self._config = config
        self._cfg: ActorReplayConfig = config.loop  # type: ignore[assignment]
        self._loop = loop
        self._config_json = config.to_json()
        # max_restarts=0: a dead actor is replaced here rather than by Ray, so the new one
        # gets its own seed, the failed call is redone on it, and failures are counted.
        self._remote = ray.remote(num_cpus=1, max_restarts=0)(CollectWorker)
        self.count = self._cfg.num_actors
        self._actors: list[Any] = [None] * self.count
        self._launches = [0] * self.count
        self._failures = [0] * self.count  # in a row
        self.in_flight: dict[Any, _Call] = {}  # ObjectRef -> call

    def _new_actor(self, index: int) -> Any:
        seed = actor_seed(
            self._config.run.seed, index, self._launches[index], self._loop.env_step_count()
        )
        self._launches[index] += 1
        return self._remote.remote(
            self._config_json, index, self.count, seed, self._cfg.actor_exploration
        )

    def start(self) -> None:
        ray = self._ray
        cluster_cpus = ray.cluster_resources().get("CPU", 0)
        if cluster_cpus < self.count:
            raise UserError(
                f"the Ray cluster has {cluster_cpus:g} CPUs and --num_actors={self.count} "
                "actors need one each; add nodes or use fewer actors"
            )
        start = time.monotonic()
        self._actors = [self._new_actor(i) for i in range(self.count)]
        refs = [a.describe.remote() for a in self._actors]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=ACTOR_START_TIMEOUT)
        if len(ready) < len(refs):
            raise UserError(
                f"only {len(ready)} of {self.count} Ray actors started within "
                f"{ACTOR_START_TIMEOUT:.0f} s; is the cluster short of CPUs or memory?"
            )
        infos = []
        for i, ref in enumerate(refs):
            try:
                infos.append(ray.get(ref))
            except Exception as e:  # noqa: BLE001  any start-up failure ends the run here
                raise UserError(
                    f"Ray actor {i} failed to start: {_reason(ray, e)} (on a cluster, every "
                    "node needs the same tfa_suite stack at the same path; "
                    "see docs/scale-out.md)"
                ) from None
        hosts = sorted({info["host"] for info in infos})
        print(
            f"{self.count} Ray actors up in {time.monotonic() - start:.1f} s on "
            f"{len(hosts)} node{'s' if len(hosts) > 1 else ''} (pids "
            f"{', '.join(str(info['pid']) for info in infos)}; {infos[0]['backend']} envs, "
            f"{self._config.run.num_envs} per actor)",
            flush=True,
        )
        if self._cfg.actor_exploration == "apex":
            print(
                "per-actor exploration: "
                + "; ".join(f"actor {i} {info['exploration']}" for i, info in enumerate(infos)),
                flush=True,
            )

    def describe(self) -> list[dict[str, Any]]:
        """Each live actor's `describe()` (pid, host, resident memory, ...)."""
        return self._ray.get([a.describe.remote() for a in self._actors if a is not None])

    def idle(self, index: int) -> bool:
        return all(call.actor != index for call in self.in_flight.values())

    def launch(self, call: _Call, weights: tuple[int, list[Any]]) -> None:
        actor = self._actors[call.actor]
        ref = actor.collect.remote(call.num_steps, call.initial, call.env_steps, weights)
        self.in_flight[ref] = call

    def wait(self, timeout: float) -> list[tuple[_Call, dict[str, Any]]]:
        """Results of every call that has finished within `timeout` s (failed ones redone)."""
        ray = self._ray
        if not self.in_flight:
            return []
        refs = list(self.in_flight)
        ready, _ = ray.wait(refs, num_returns=1, timeout=timeout)
        if ready:  # everything else that is done too, without waiting
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        done = []
        for ref in ready:
            call = self.in_flight.pop(ref)
            try:
                result = ray.get(ref)
            except Exception as e:  # noqa: BLE001  RayActorError, RayTaskError: any failure
                self._replace(call, _reason(ray, e))
                continue
            self._failures[call.actor] = 0
            done.append((call, result))
        return done

    def _replace(self, call: _Call, reason: str) -> None:
        """Replaces a failed call's actor with a fresh process and redoes the call there."""
        index = call.actor
        self._failures[index] += 1
        limit = self._cfg.actor_max_restarts
        if self._failures[index] > limit:
            raise EnvironmentFailed(
                f"actor {index} failed {self._failures[index]} times in a row "
                f"(--actor_max_restarts={limit}); the last failure: {reason}"
            )
        print(
            f"actor {index} failed: {reason}; restarting it "
            f"({self._failures[index]} of at most {limit} in a row)",
            flush=True,
        )
        self._kill(index)
        self._actors[index] = self._new_actor(index)
        self.launch(call, self._loop.weights())

    def _kill(self, index: int) -> None:
        actor = self._actors[index]
        self._actors[index] = None
        if actor is not None:
            try:
                self._ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001  already gone
                pass

    def close(self) -> None:
        self.in_flight.clear()
        for index in range(self.count):
            self._kill(index)


def _reason(ray, error: BaseException) -> str:  # noqa: ANN001
    """One line for a failed Ray call: the env's message, or how the process ended."""
    if isinstance(error, ray.exceptions.RayTaskError):
        cause = getattr(error, "cause", None)
        if cause is not None and not isinstance(cause, ray.exceptions.RayError):
            text = str(cause).strip().splitlines()
            return text[0] if text else type(cause).__name__
    if isinstance(error, ray.exceptions.RayActorError):
        if getattr(error, "actor_init_failed", False):
            return f"it failed to start: {failure_line(error)}"
        return "its process died (killed, or out of memory)"
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    return f"{type(error).__name__}: {lines[-1] if lines else ''}".rstrip(": ")


class ActorReplayLoop(ReplayLoop):
    """The learner: replay, compiled train steps, and the Ray actors that feed them.

    Reuses `ReplayLoop`'s replay construction (with N x num_envs rows), its train-step
    body, checkpoint objects and prefill size; collection is the actors'.
    """

    def __init__(
        self,
        config: TrainConfig,
        tf_env: tf_environment.TFEnvironment,
        built: BuiltAgent,
        env_steps: tf_metrics.EnvironmentSteps,
        device: str = "/CPU:0",
    ):
        tf.Module.__init__(self, name="actor_replay_loop")
        cfg: ActorReplayConfig = config.loop  # type: ignore[assignment]
        if cfg.actor_exploration == "apex" and built.actor_collect_policy is None:
            raise UserError(
                f"--actor_exploration=apex needs per-actor exploration from the agent, and "
                f"{config.run.agent} has none; use --actor_exploration=shared"
            )
        self._ray = import_ray()
        self._config = config
        self._count = cfg.num_actors
        self._envs_per_actor = tf_env.batch_size
        self._init_replay(config, built, env_steps, self._count * self._envs_per_actor, device)
        self._sample_steps = built.train_sequence_length
        self._device = device
        self._train_step = built.agent.train_step_counter
        self._policy_variables = built.greedy_policy.variables()
        self._ratio = cfg.ratio()
        # (env steps, train steps) from which the ratio counts: the end of the initial
        # collection, so that it resumes from the checkpointed counters alone.
        self._ratio_origin = (cfg.initial_collect_steps, 0)
        self._call_steps = math.ceil(cfg.actor_steps_per_call / self._envs_per_actor)  # batched
        self._chunk = max(1, cfg.train_steps_per_iteration)
        self._data_spec = built.agent.collect_data_spec
        rows = self._count * self._envs_per_actor
        self._add_round = tf.function(
            self._add_items,
            input_signature=[
                tf.TensorSpec([None, rows, *s.shape], s.dtype)
                for s in tf.nest.flatten(self._data_spec)
            ],
            autograph=False,
        )
        self._pool: _ActorPool | None = None
        self._started_ray = False
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
        # Where the learner's time goes (seconds): waiting for actors, adding rounds to the
        # replay (numpy concatenation included), training. Read by `make bench-scale`.
        self.time_split = dict(wait=0.0, add=0.0, train=0.0)

    # --- the session's interface -----------------------------------------------------

    def env_step_count(self) -> int:
        return int(self.env_steps.result())

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
                pool.launch(_Call(index, share, initial, steps), self.weights())
            while pool.in_flight:
                self._take(pool.wait(POLL_SECONDS))
            self._add_ready_rounds()
        if refill:
            # A resume without a checkpointed replay refills it; as in the single-process
            # loop those steps earn no gradient steps, so the ratio counts from here.
            self._ratio_origin = (self.env_step_count(), int(self._train_step.numpy()))
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
            owed = self._owed()
            clock = time.monotonic()
            self._take(pool.wait(0.0 if owed > 0 else POLL_SECONDS))
            self.time_split["wait"] += time.monotonic() - clock
            if self.env_step_count() < target:
                self._add_ready_rounds()
            owed = self._owed()
            if owed > 0:
                n = min(owed, self._chunk)
                clock = time.monotonic()
                loss_sum += float(self.train_only(tf.constant(n, tf.int64))) * n
                self.time_split["train"] += time.monotonic() - clock
                updates += n
                self._perf_updates += n
                self._version += 1
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

    def actor_descriptions(self) -> list[dict[str, Any]]:
        """Each actor's pid, host, backend, exploration and resident bytes, asked now."""
        return self._pool.describe() if self._pool is not None else []

    def close(self) -> None:
        """Stops the actors, and the local Ray if this loop started it."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        self._put = None
        if self._started_ray:
            self._ray.shutdown()
            self._started_ray = False

    # --- learner internals -------------------------------------------------------------

    def _started_pool(self) -> _ActorPool:
        if self._pool is None:
            self._started_ray = init_ray(self._cfg.ray_address, self._count)
            pool = _ActorPool(self._ray, self._config, self)
            self._pool = pool
            pool.start()
        return self._pool

    def weights(self) -> tuple[int, list[Any]]:
        """(version, [ObjectRef]) of the current policy weights; one `ray.put` per version."""
        if self._put is None or self._put[0] != self._version:
            values = [v.numpy() for v in self._policy_variables]
            self._put = (self._version, self._ray.put(values))
        return self._put[0], [self._put[1]]

    def set_replay_ratio(self, ratio: float) -> None:
        """Changes the ratio from this point on (`make bench-scale` measures pure
        collection and training at a ratio with the same actors)."""
        self._ratio = ratio
        self._ratio_origin = (self.env_step_count(), int(self._train_step.numpy()))

    def _owed(self) -> int:
        """Gradient steps the replay ratio allows now and the learner has not made yet."""
        steps, updates = self._ratio_origin
        collected = max(0, self.env_step_count() - steps)
        made = int(self._train_step.numpy()) - updates
        return max(0, math.floor(self._ratio * collected) - made)

    def _pending_steps(self, pool: _ActorPool) -> int:
        """Env steps in flight or waiting for their round (at most; boundaries count less)."""
        queued = sum(len(q) for q in self._queues)
        return (len(pool.in_flight) + queued) * self._call_steps * self._envs_per_actor

    def _launch_idle(self, pool: _ActorPool) -> None:
        """A new call for every idle actor, unless the learner is too far behind.

        The learner's backlog (owed steps plus what pending data will owe) may grow to
        about two rounds of calls; past that, actors wait for it. An actor whose queue is
        empty always gets its call: the next round waits for it.
        """
        per_call = self._call_steps * self._envs_per_actor
        limit = self._ratio * 2 * self._count * per_call
        for index in range(self._count):
            if not pool.idle(index):
                continue
            backlog = self._owed() + self._ratio * (self._pending_steps(pool) + per_call)
            if self._queues[index] and self._ratio > 0 and backlog > limit:
                continue
            steps = self.env_step_count() + self._pending_steps(pool)
            pool.launch(_Call(index, self._call_steps, False, steps), self.weights())

    def _take(self, done: list[tuple[_Call, dict[str, Any]]]) -> None:
        for call, result in done:
            self._queues[call.actor].append(result)
            self._perf_steps[call.actor] += result["env_steps"]

    def _add_ready_rounds(self) -> None:
        """Adds every complete round (one segment of each actor) to the replay, in order."""
        while all(self._queues):
            clock = time.monotonic()
            segments = [q.popleft() for q in self._queues]
            fields = [
                np.concatenate([s["items"][k] for s in segments], axis=1)
                for k in range(len(segments[0]["items"]))
            ]
            self._add_round(*fields)
            self.time_split["add"] += time.monotonic() - clock

    def _add_items(self, *fields: tf.Tensor) -> tf.Tensor:
        """Adds [T, rows] trajectory fields step by step, through the replay loop's observers."""
        items = tf.nest.pack_sequence_as(self._data_spec, list(fields))
        length = tf.shape(fields[0])[0]
        observers = [self.replay.add_batch, self.env_steps, self.episodes, self.train_return]

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
                self._train_body,
                (tf.constant(0, train_steps.dtype), tf.constant(0.0)),
            )
        return loss_sum / tf.maximum(tf.cast(train_steps, tf.float32), 1.0)
