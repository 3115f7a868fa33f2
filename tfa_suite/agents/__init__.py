"""Agents by name. Each agent module registers its own builder, so adding an agent
touches that module (and a config), never a central if/elif."""

from tfa_suite.agents.registry import AgentBuilder, build_agent, register_agent

# Importing an agent module registers it.
from tfa_suite.agents import c51, dqn  # noqa: E402,F401  isort: skip

__all__ = ["AgentBuilder", "build_agent", "register_agent"]
