"""Turn an `--env` string into gymnasium environments.

This module needs only gymnasium, so `experiments/evaluate.py` can build the evaluation
environment of a saved policy without importing TF-Agents or any training code.

An `--env` string is either a gymnasium id (`CartPole-v1`, `ALE/Pong-v5`, `finance`,
`my_pkg:MyEnv-v0` in gymnasium's own module:id form) or an import path to an environment
class or factory (`my_pkg.my_mod:MyEnv`), called with the keyword arguments.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import os
from collections.abc import Callable
from typing import Any

import gymnasium as gym

from tfa_suite.config import RunConfig
from tfa_suite.envs.atari_eval import atari_game
from tfa_suite.errors import UserError

# The suite's own environments, registered with gymnasium by short name. Training uses a
# batched PyEnvironment of the same simulation when `training_env.PY_ENVS` names one.
gym.register(
    id="finance",
    entry_point="tfa_suite.finance.env:FinanceGymEnv",
    max_episode_steps=744,  # every life is 62 years of months; the env ends it itself
)


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    """Everything needed to build the same environment again, in any process."""

    env: str
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    # 0 keeps the environment's own time limit; > 0 sets a TimeLimit of that many steps.
    max_episode_steps: int = 0

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EnvSpec:
        return cls(
            env=str(data["env"]),
            kwargs=dict(data.get("kwargs", {})),
            max_episode_steps=int(data.get("max_episode_steps", 0)),
        )


def env_spec(run: RunConfig) -> EnvSpec:
    """The EnvSpec of a run's --env, --env_kwargs and --max_episode_steps."""
    return EnvSpec(run.env, parse_env_kwargs(run.env_kwargs), run.max_episode_steps)


def parse_env_kwargs(text: str) -> dict[str, Any]:
    """Parses `--env_kwargs`, a JSON object such as '{"continuous": false}'."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"--env_kwargs is not valid JSON ({e.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise UserError(f"--env_kwargs must be a JSON object, got {text!r}")
    return value


def _resolve_import_path(env: str) -> Callable[..., gym.Env] | None:
    """Returns the class or factory named by `module:attr`, or None for gymnasium ids."""
    if ":" not in env:
        return None
    module_name, attr = env.split(":", 1)
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001  any failure inside the user's module is theirs to fix
        raise UserError(
            f"--env={env}: cannot import module '{module_name}' ({type(e).__name__}: {e})"
        ) from None
    target = getattr(module, attr, None)
    if target is None:
        # gymnasium's own "module:EnvId" form: importing the module registered the id.
        return None
    if not callable(target):
        raise UserError(f"--env={env}: '{attr}' in '{module_name}' is not a class or function")
    return target


def _accepts_render_mode(factory: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return "render_mode" in params or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
    )


def make_gym_env(spec: EnvSpec, render: bool = False) -> gym.Env:
    """Builds one gymnasium environment; `render=True` asks for rgb_array frames."""
    kwargs = dict(spec.kwargs)
    if render:
        # Off-screen rendering: pygame-based renderers otherwise look for a display and
        # an audio device, which headless machines do not have.
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    factory = _resolve_import_path(spec.env)
    try:
        if factory is None:
            if render:
                kwargs["render_mode"] = "rgb_array"
            if spec.max_episode_steps > 0:
                kwargs["max_episode_steps"] = spec.max_episode_steps
            env = gym.make(spec.env, **kwargs)
        else:
            if render and _accepts_render_mode(factory):
                kwargs.setdefault("render_mode", "rgb_array")
            env = factory(**kwargs)
            if not isinstance(env, gym.Env):
                raise UserError(
                    f"--env={spec.env} returned {type(env).__name__}, not a gymnasium.Env"
                )
            if spec.max_episode_steps > 0:
                env = gym.wrappers.TimeLimit(env, spec.max_episode_steps)
    except gym.error.Error as e:
        # NameNotFound, VersionNotFound, NamespaceNotFound, DependencyNotInstalled, ...
        raise UserError(f"--env={spec.env}: {e}") from None
    except TypeError as e:
        raise UserError(f"--env={spec.env} rejected --env_kwargs {spec.kwargs}: {e}") from None
    return env


def box_action(space: gym.spaces.Box, action: Any) -> Any:
    """A policy's float32 action in the Box's own dtype, inside its bounds.

    Policies act in float32 (float64 Box actions are exposed as float32, see
    `gym_adapter.action_space_to_spec`). Clipping after the cast matters for float64
    bounds that float32 rounds outward (0.1 becomes 0.10000000149); the policies
    themselves already act within bounds.
    """
    import numpy as np

    return np.clip(np.asarray(action, dtype=space.dtype), space.low, space.high)


def reward_threshold(spec: EnvSpec) -> float | None:
    """The return at which the environment counts as solved, if gymnasium registers one."""
    # Atari games have no registered threshold (and need no gymnasium registration here).
    if _resolve_import_path(spec.env) is not None or atari_game(spec.env) is not None:
        return None
    # gymnasium's "module:EnvId" form: the module is imported above, the id is registered.
    env_id = spec.env.split(":", 1)[1] if ":" in spec.env else spec.env
    try:
        registered = gym.spec(env_id)
    except gym.error.Error as e:
        raise UserError(f"--env={spec.env}: {e}") from None
    return registered.reward_threshold
