"""Choose the training environment: a TF-native one when it exists, else gymnasium."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from gymnasium.wrappers import TimeLimit
from tf_agents.environments import tf_environment

from tfa_suite.config import RunConfig
from tfa_suite.envs.atari_eval import atari_game
from tfa_suite.envs.gym_adapter import make_tf_env
from tfa_suite.envs.loading import EnvSpec, make_gym_env
from tfa_suite.errors import UserError

# gymnasium id -> "module:factory" of a TF-native batched equivalent, built as
# factory(batch_size=..., seed=..., max_episode_steps=...). A TF-native env registers
# here by adding one line; it must match the gymnasium env step for step (each has a
# side-by-side equivalence test).
TF_NATIVE_ENVS: dict[str, str] = {
    "CartPole-v1": "tfa_suite.envs.native.cartpole:TFCartPoleEnv",
    "Pendulum-v1": "tfa_suite.envs.native.pendulum:TFPendulumEnv",
}


# gymnasium id -> "module:factory" of a batched TF-Agents PyEnvironment of the same env,
# built as factory(batch_size=..., seed=..., **env_kwargs). It steps all copies at once
# (the finance simulation is vectorized with numpy) instead of one gymnasium env each.
PY_ENVS: dict[str, str] = {
    "finance": "tfa_suite.finance.env:FinanceEnvironment",
}


def _import(path: str) -> Callable[..., object]:
    module_name, attr = path.split(":")
    return getattr(importlib.import_module(module_name), attr)


def _tf_native_factory(spec: EnvSpec) -> Callable[..., tf_environment.TFEnvironment] | None:
    # Keyword arguments change the dynamics or rewards, which the TF version does not model.
    if spec.kwargs or spec.env not in TF_NATIVE_ENVS:
        return None
    return _import(TF_NATIVE_ENVS[spec.env])


def make_tf_eval_env(
    run: RunConfig, spec: EnvSpec, batch_size: int, seed: int
) -> tf_environment.TFEnvironment | None:
    """A TF-native copy of the env for in-graph evaluation, when training uses one."""
    factory = _tf_native_factory(spec)
    if factory is None or run.backend == "python":
        return None
    extra = {"max_episode_steps": spec.max_episode_steps} if spec.max_episode_steps else {}
    return factory(batch_size=batch_size, seed=seed, **extra)


def make_train_env(run: RunConfig, spec: EnvSpec) -> tuple[tf_environment.TFEnvironment, str]:
    """The batched training environment and the backend name ("graph" or "python")."""
    factory = _tf_native_factory(spec)
    if run.backend == "graph" and factory is None:
        raise UserError(
            f"--backend=graph needs a TF-native environment; {run.env}"
            f"{' with --env_kwargs' if spec.kwargs else ''} has none (available: "
            f"{', '.join(sorted(TF_NATIVE_ENVS))}, without --env_kwargs). Use --backend=python"
        )
    if factory is not None and run.backend in ("auto", "graph"):
        # Build (and so validate) the gymnasium env too: evaluation always runs on it.
        make_gym_env(spec).close()
        extra = {"max_episode_steps": spec.max_episode_steps} if spec.max_episode_steps else {}
        return factory(batch_size=run.num_envs, seed=run.seed, **extra), "graph"
    game = atari_game(spec.env)
    if game is not None:
        from tf_agents.environments import tf_py_environment

        from tfa_suite.envs.atari import AtariEnvironment

        atari = AtariEnvironment(
            game, run.num_envs, run.seed, training=True, env_kwargs=spec.kwargs
        )
        return tf_py_environment.TFPyEnvironment(atari), "python"
    if spec.env in PY_ENVS:
        if spec.max_episode_steps:
            raise UserError(
                f"--max_episode_steps does not apply to --env={spec.env}: the env sets "
                "its own episode length"
            )
        from tf_agents.environments import tf_py_environment

        reserved = sorted({"batch_size", "seed"} & set(spec.kwargs))
        if reserved:
            raise UserError(
                f"--env_kwargs cannot set {', '.join(reserved)} for --env={spec.env}; "
                "use --num_envs and --seed"
            )
        factory = _import(PY_ENVS[spec.env])
        py_env = factory(batch_size=run.num_envs, seed=run.seed, **spec.kwargs)
        return tf_py_environment.TFPyEnvironment(py_env), "python"
    return make_tf_env(spec, run.num_envs, run.seed), "python"


def warn_if_unbounded(spec: EnvSpec) -> None:
    """Says at the start what is known of the env's time limit when none is set: it
    registers none and no TimeLimit wraps it (it may still truncate episodes itself).

    Such an env can run an evaluation episode for ever; evaluation cuts episodes at
    --eval_max_episode_steps and reports how many it cut, but the user should know why.
    """
    if spec.max_episode_steps or atari_game(spec.env) is not None:
        return
    env = make_gym_env(spec)
    try:
        limited, layer = False, env
        while layer is not None:
            if isinstance(layer, TimeLimit):
                limited = True
                break
            layer = getattr(layer, "env", None)
        limited = limited or bool(env.spec is not None and env.spec.max_episode_steps)
    finally:
        env.close()
    if not limited:
        print(
            f"note: {spec.env} registers no time limit and is not wrapped in a TimeLimit, so "
            "unless it truncates its own episodes one ends only when it terminates; "
            "--max_episode_steps sets a limit (evaluation cuts episodes at "
            "--eval_max_episode_steps and reports how many it cut)",
            flush=True,
        )
