"""Loop kinds by name: how data flows from the environment to the agent's train step.

- `replay`: collect into a replay buffer and train on samples of it (DQN, C51, DDPG,
  TD3, SAC, tabular Q): `tfa_suite.loops.replay`; with `--num_actors > 0`, Ray actor
  processes collect and this process trains: `tfa_suite.loops.actors`.
- `rollout`: collect a fixed rollout with the current policy, train on it, discard it
  (REINFORCE, A2C, PPO): `tfa_suite.loops.rollout`.

A loop registers its config section and its class here; an agent names its loop kind in
its `AgentSpec`. The session (`tfa_suite.session`) drives any loop through the same small
interface: `prefill_steps`, `prefill`, `iterations_within`, `run`, `checkpoint_objects`
and the `env_steps`, `episodes` and `train_return` metrics, plus an optional `compile()`
that traces the compiled function up front and returns its seconds.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tfa_suite.config import Section
from tfa_suite.errors import UserError


@dataclasses.dataclass(frozen=True)
class LoopSpec:
    name: str
    config_cls: type[Section]
    loop_cls: Any  # constructed as loop_cls(config, tf_env, built_agent, env_steps, device)
    # Built instead of loop_cls when the loop section's num_actors > 0 (same arguments).
    actor_loop_cls: Any = None


def _replay() -> LoopSpec:
    from tfa_suite.loops.actors import ActorReplayConfig, ActorReplayLoop
    from tfa_suite.loops.replay import ReplayLoop

    # ActorReplayConfig is ReplayConfig plus the --num_actors fields, which other loop
    # kinds lack, so their agents refuse those flags.
    return LoopSpec("replay", ActorReplayConfig, ReplayLoop, actor_loop_cls=ActorReplayLoop)


def _rollout() -> LoopSpec:
    from tfa_suite.loops.rollout import RolloutConfig, RolloutLoop

    return LoopSpec("rollout", RolloutConfig, RolloutLoop)


LOOPS = {"replay": _replay, "rollout": _rollout}


def loop_spec(name: str) -> LoopSpec:
    if name not in LOOPS:
        raise UserError(f"unknown loop kind {name!r}; known: {', '.join(sorted(LOOPS))}")
    return LOOPS[name]()
