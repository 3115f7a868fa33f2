"""Agents by name. Each agent module registers its own `AgentSpec`, so adding an agent
touches that module (and a config), never a central if/elif."""

from tfa_suite.agents.registry import (
    AgentContext,
    AgentSpec,
    BuiltAgent,
    agent_names,
    agent_spec,
    build_agent,
    register_agent,
    unknown_agent_message,
)

# Importing an agent module registers it.
from tfa_suite.agents import actor_critic, c51, dqn, on_policy, tabular  # noqa: E402,F401  isort: skip

__all__ = [
    "AgentContext",
    "AgentSpec",
    "BuiltAgent",
    "agent_names",
    "agent_spec",
    "build_agent",
    "register_agent",
    "unknown_agent_message",
]
