"""Loop kinds by name: how data flows from the environment to the agent's train step.

- `replay`: collect into a replay buffer and train on samples of it (DQN, C51, DDPG,
  TD3, SAC, tabular Q): `tfa_suite.loops.replay`.
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


def _replay() -> LoopSpec:
    from tfa_suite.loops.replay import ReplayConfig, ReplayLoop

    return LoopSpec("replay", ReplayConfig, ReplayLoop)


def _rollout() -> LoopSpec:
    from tfa_suite.loops.rollout import RolloutConfig, RolloutLoop

    return LoopSpec("rollout", RolloutConfig, RolloutLoop)


LOOPS = {"replay": _replay, "rollout": _rollout}


def loop_spec(name: str) -> LoopSpec:
    if name not in LOOPS:
        raise UserError(f"unknown loop kind {name!r}; known: {', '.join(sorted(LOOPS))}")
    return LOOPS[name]()
