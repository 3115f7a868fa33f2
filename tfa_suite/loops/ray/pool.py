"""The Ray side of the learner: actor processes, their calls in flight, failures, restarts."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from tfa_suite.errors import EnvironmentFailed, UserError
from tfa_suite.loops.ray.config import RayConfig
from tfa_suite.loops.ray.runtime import failure_reason
from tfa_suite.loops.ray.worker import ActorRecipe, CollectWorker

# Seconds to wait for a new actor's first answer before calling the cluster short of room.
ACTOR_START_TIMEOUT = 300.0


def actor_seed(run_seed: int, index: int, launch: int, env_steps: int) -> int:
    """Seed of actor `index`'s `launch`-th process, started at learner env step `env_steps`.

    Distinct for every actor and every restart, and reproducible from where it started;
    below 2**30 so that the env copies' seeds (seed + copy) stay valid.
    """
    sequence = np.random.SeedSequence([run_seed, index, launch, env_steps])
    return int(sequence.generate_state(1, np.uint32)[0] % (2**30))


@dataclasses.dataclass
class Call:
    """One collect call of one actor, in flight."""

    actor: int
    num_steps: int  # batched env steps
    initial: bool
    env_steps: int


Weights = tuple[int, list[Any]]  # (version, [ObjectRef of the policy variables' values])


class ActorPool:
    """The Ray side: actor processes, their calls in flight, failures and restarts.

    `env_steps()` is the learner's env-step count (a new actor's seed depends on it) and
    `weights()` the current policy weights, which a redone call carries.
    """

    def __init__(
        self,
        ray,  # noqa: ANN001
        cfg: RayConfig,
        recipe: ActorRecipe,
        env_steps: Callable[[], int],
        weights: Callable[[], Weights],
    ):
        self._ray = ray
        self._cfg = cfg
        self._recipe = recipe
        self._env_steps, self._weights = env_steps, weights
        # max_restarts=0: a dead actor is replaced here rather than by Ray, so the new one
        # gets its own seed, the failed call is redone on it, and failures are counted.
        self._remote = ray.remote(num_cpus=1, max_restarts=0)(CollectWorker)
        self.count = cfg.num_actors
        self._actors: list[Any] = [None] * self.count
        self._launches = [0] * self.count
        self._failures = [0] * self.count  # in a row
        self.in_flight: dict[Any, Call] = {}  # ObjectRef -> call

    def _new_actor(self, index: int) -> Any:
        seed = actor_seed(self._recipe.run_seed, index, self._launches[index], self._env_steps())
        self._launches[index] += 1
        return self._remote.remote(
            self._recipe, index, self.count, seed, self._cfg.actor_exploration
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
                    f"Ray actor {i} failed to start: {failure_reason(ray, e)} (on a cluster, every "
                    "node needs the same tfa_suite stack at the same path; "
                    "see docs/scale-out.md)"
                ) from None
        hosts = sorted({info["host"] for info in infos})
        print(
            f"{self.count} Ray actors up in {time.monotonic() - start:.1f} s on "
            f"{len(hosts)} node{'s' if len(hosts) > 1 else ''} (pids "
            f"{', '.join(str(info['pid']) for info in infos)}; {infos[0]['backend']} envs, "
            f"{self._recipe.num_envs} per actor)",
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

    def launch(self, call: Call, weights: Weights) -> None:
        actor = self._actors[call.actor]
        ref = actor.collect.remote(call.num_steps, call.initial, call.env_steps, weights)
        self.in_flight[ref] = call

    def wait(self, timeout: float) -> list[tuple[Call, dict[str, Any]]]:
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
                self._replace(call, failure_reason(ray, e))
                continue
            self._failures[call.actor] = 0
            done.append((call, result))
        return done

    def _replace(self, call: Call, reason: str) -> None:
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
        self.launch(call, self._weights())

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
