"""Names resolved to parts: which sections, which loop and which builder an `--agent` has.

The one module that knows both the agents (`tfa_suite.agents`, each registering itself)
and the loop kinds (`LOOPS` below), one layer above both: config types stay below them,
the run layer (`tfa_suite.run`) and the flags above. An agent names its loop kind in its
`AgentSpec`; a loop kind brings its config section and, if it can scale out, the Ray one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from tfa_suite import agents
from tfa_suite.agents.interface import AgentContext, BuiltAgent
from tfa_suite.config import (
    LoopSection,
    RunConfig,
    SearchParam,
    Section,
    TrainConfig,
    flatten_saved,
)
from tfa_suite.config import not_for_agent_message as _not_for_agent_message
from tfa_suite.errors import UserError
from tfa_suite.loops.base import Loop, LoopInputs
from tfa_suite.loops.ray.config import RayConfig
from tfa_suite.loops.ray.worker import ActorRecipe
from tfa_suite.loops.replay import ReplayConfig, ReplayLoop
from tfa_suite.loops.rollout import RolloutConfig, RolloutLoop

agent_names = agents.agent_names
agent_spec = agents.agent_spec
unknown_agent_message = agents.unknown_agent_message


@dataclasses.dataclass(frozen=True)
class LoopKind:
    name: str
    config_cls: type[LoopSection]
    # The scale-out section (Ray actors) of a loop kind that has one, else None.
    ray_cls: type[Section] | None
    # build(config, inputs, recipe) -> the loop; `recipe` builds an actor's env and agent
    # in another process, for a loop that starts Ray actors.
    build: Callable[[TrainConfig, LoopInputs, ActorRecipe | None], Loop]


def _replay_loop(config: TrainConfig, inputs: LoopInputs, recipe: ActorRecipe | None) -> Loop:
    if isinstance(config.ray, RayConfig) and config.ray.num_actors > 0:
        from tfa_suite.loops.ray.learner import RayLearnerLoop

        if recipe is None:
            raise ValueError("a loop with Ray actors needs an ActorRecipe")
        return RayLearnerLoop(config.loop, config.ray, inputs, recipe)  # type: ignore[arg-type]
    return ReplayLoop(config.loop, inputs)  # type: ignore[arg-type]


def _rollout_loop(config: TrainConfig, inputs: LoopInputs, recipe: ActorRecipe | None) -> Loop:
    return RolloutLoop(config.loop, inputs)  # type: ignore[arg-type]


LOOPS: dict[str, LoopKind] = {
    "replay": LoopKind("replay", ReplayConfig, RayConfig, _replay_loop),
    "rollout": LoopKind("rollout", RolloutConfig, None, _rollout_loop),
}


def loop_kind(name: str) -> LoopKind:
    if name not in LOOPS:
        raise UserError(f"unknown loop kind {name!r}; known: {', '.join(sorted(LOOPS))}")
    return LOOPS[name]


def section_classes(agent: str) -> dict[str, type[Section]]:
    """The section classes of `agent`, in flag order: run, loop, ray (if any), agent."""
    spec = agent_spec(agent)
    kind = loop_kind(spec.loop)
    classes: dict[str, type[Section]] = {"run": RunConfig, "loop": kind.config_cls}
    if kind.ray_cls is not None:
        classes["ray"] = kind.ray_cls
    classes["agent"] = spec.config_cls
    return classes


def search_space(agent: str) -> dict[str, SearchParam]:
    """What `experiments/tune.py` searches for `agent` by default: its section's
    `SEARCH_SPACE` (field -> range, over any of its sections' fields); empty if none."""
    return dict(agent_spec(agent).config_cls.SEARCH_SPACE)


def not_for_agent_message(agent: str, names: list[str]) -> str:
    return _not_for_agent_message(agent, section_classes(agent), names)


def make_config(**flat: Any) -> TrainConfig:
    """Builds a config from flat fields (flag names); `agent` picks the other sections.

    A field that no section of that agent has is refused with one line naming the agent
    and the fields it takes, as the flags are.
    """
    agent = flat.get("agent", RunConfig.agent)
    classes = section_classes(agent)
    owner = {name: key for key, cls in classes.items() for name in cls.field_names()}
    foreign = sorted(name for name in flat if name not in owner)
    if foreign:
        raise UserError(not_for_agent_message(agent, foreign))
    return TrainConfig(
        **{
            key: cls(**{k: v for k, v in flat.items() if owner[k] == key})
            for key, cls in classes.items()
        }
    )


def config_from_json(data: dict[str, Any]) -> TrainConfig:
    """Reads a saved config.json, sectioned or from before the sections (one flat object).

    Unknown fields are dropped, so a run dir saved by an older version still reads.
    """
    flat = flatten_saved(data)
    agent = flat.get("agent", RunConfig.agent)
    known = {n for cls in section_classes(agent).values() for n in cls.field_names()}
    return make_config(**{k: v for k, v in flat.items() if k in known})


def build_agent(config: TrainConfig, context: AgentContext) -> BuiltAgent:
    """The agent of `config`, built from its own section and the run facts it may use."""
    run = config.run
    context = dataclasses.replace(context, env_id=run.env, num_env_steps=run.num_env_steps)
    return agents.build_agent(run.agent, config.agent, context)


def build_loop(config: TrainConfig, inputs: LoopInputs, recipe: ActorRecipe | None) -> Loop:
    """The loop of `config`'s agent: its loop kind, scaled out if the Ray section says so."""
    return loop_kind(agent_spec(config.run.agent).loop).build(config, inputs, recipe)
