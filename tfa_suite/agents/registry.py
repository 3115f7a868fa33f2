"""The name -> agent mapping behind `--agent`.

An agent module registers itself with `register_agent(AgentSpec(...))`: its name, its
config section, the loop kind it trains on, the kind of action it takes and a builder.
The loop never asks which agent it runs; it asks the `BuiltAgent` for what it needs
(`tfa_suite.agents.interface`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import tensorflow as tf
from tf_agents.typing import types

from tfa_suite.agents.interface import AgentContext, BuiltAgent, describe_spec
from tfa_suite.config import Section
from tfa_suite.errors import UnsupportedSpaceError, UserError

DISCRETE, CONTINUOUS = "discrete", "continuous"
# An agent whose networks take either kind (the policy-gradient family).
ANY_ACTIONS = "discrete or continuous"


@dataclasses.dataclass(frozen=True)
class AgentSpec:
    name: str
    config_cls: type[Section]
    loop: str  # a loop kind: a key of tfa_suite.catalog.LOOPS
    actions: str  # DISCRETE, CONTINUOUS or ANY_ACTIONS
    # build(its config section, context) -> BuiltAgent
    build: Callable[[Any, AgentContext], BuiltAgent]
    summary: str = ""


_AGENTS: dict[str, AgentSpec] = {}


def register_agent(spec: AgentSpec) -> AgentSpec:
    if spec.name in _AGENTS:
        raise ValueError(f"agent {spec.name!r} is registered twice")
    _AGENTS[spec.name] = spec
    return spec


def agent_names() -> list[str]:
    return sorted(_AGENTS)


def unknown_agent_message(name: str) -> str:
    return f"unknown --agent {name!r}; known: {', '.join(agent_names())}"


def agent_spec(name: str) -> AgentSpec:
    if name not in _AGENTS:
        raise UserError(unknown_agent_message(name))
    return _AGENTS[name]


def action_kind(action_spec: types.NestedTensorSpec) -> str | None:
    """DISCRETE for one integer action, CONTINUOUS for one float vector, else None."""
    if not isinstance(action_spec, tf.TensorSpec):
        return None
    if action_spec.dtype.is_integer and action_spec.shape.rank == 0:
        return DISCRETE
    if action_spec.dtype.is_floating and action_spec.shape.rank == 1:
        return CONTINUOUS
    return None


_SPACES = {
    DISCRETE: "one Discrete space",
    CONTINUOUS: "one one-dimensional Box space",
    ANY_ACTIONS: "one Discrete or one-dimensional Box space",
}


def check_action_spec(spec: AgentSpec, env: str, action_spec: types.NestedTensorSpec) -> None:
    """Refuses an env whose actions the agent cannot take, naming the agents that can."""
    kind = action_kind(action_spec)
    if kind == spec.actions or (spec.actions == ANY_ACTIONS and kind is not None):
        return
    if kind is None:
        raise UnsupportedSpaceError(
            f"--agent={spec.name} needs {spec.actions} actions ({_SPACES[spec.actions]}), "
            f"but {env}'s action spec is {describe_spec(action_spec)}"
        )
    fitting = [n for n, s in sorted(_AGENTS.items()) if s.actions in (kind, ANY_ACTIONS)]
    raise UnsupportedSpaceError(
        f"--agent={spec.name} takes {spec.actions} actions, but {env} has {kind} actions "
        f"({action_spec.dtype.name} {action_spec.shape}); agents for {kind} actions: "
        f"{', '.join(fitting)}"
    )


def build_agent(name: str, section: Section, context: AgentContext) -> BuiltAgent:
    """Builds agent `name` from its config section, after checking it takes the env's actions."""
    spec = agent_spec(name)
    check_action_spec(spec, context.env_id, context.action_spec)
    return spec.build(section, context)
