"""`RayConfig`: the replay loop's scale-out section (`--num_actors` and its fields).

Ray is optional (`make install-ray`, requirements/ray-lock.txt): this module checks that it
is installed without importing it.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from typing import ClassVar

from tfa_suite.config import RunConfig, Section, _field, need
from tfa_suite.loops.replay import ReplayConfig

EXPLORATIONS = ("shared", "apex")
INSTALL_HINT = "install it with `make install-ray` (Ray core, pinned in requirements/ray-lock.txt)"


@dataclasses.dataclass
class RayConfig(Section):
    """The scale-out section of the replay loop: Ray actors collect, this process trains.

    Every field is off at its default; `--num_actors=0` is the single-process compiled loop.
    """

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
    RESUMABLE: ClassVar[frozenset[str]] = frozenset({"ray_address", "actor_max_restarts"})

    def validate(self, run: RunConfig) -> None:
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

    def ratio(self, loop: ReplayConfig) -> float:
        """Gradient steps per env step: --replay_ratio, or the single-process loop's."""
        if not math.isnan(self.replay_ratio):
            return self.replay_ratio
        return loop.train_steps_per_iteration / loop.collect_steps_per_iteration


def ray_installed() -> bool:
    try:
        return importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):  # ValueError: sys.modules["ray"] is None
        return False
