"""Agents by name. Each agent module registers its own `AgentSpec`, so adding an agent
touches that module (and a config), never a central if/elif."""

from tfa_suite.agents.interface import AgentContext, BuiltAgent, ReplayHooks, RolloutHooks
from tfa_suite.agents.registry import (
    AgentSpec,
    agent_names,
    agent_spec,
    build_agent,
    register_agent,
    unknown_agent_message,
)

# Importing an agent module registers it.
from tfa_suite.agents import actor_critic, c51, dqn, tabular  # noqa: E402,F401  isort: skip
from tfa_suite.agents.policy_gradient import ppo, reinforce  # noqa: E402,F401  isort: skip

__all__ = [
    "AgentContext",
    "AgentSpec",
    "BuiltAgent",
    "ReplayHooks",
    "RolloutHooks",
    "agent_names",
    "agent_spec",
    "build_agent",
    "register_agent",
    "unknown_agent_message",
]
