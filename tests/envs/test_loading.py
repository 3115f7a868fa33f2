"""make_gym_env, parse_env_kwargs, reward_threshold and EnvSpec's JSON form."""

from __future__ import annotations

import tfa_suite  # noqa: F401  -- first: it selects Keras 2 before TensorFlow loads

# isort: split

import json

import gymnasium as gym
import numpy as np
import pytest

from tests import envs_for_tests
from tests.envs_for_tests import CountdownEnv, NeverEndingEnv
from tfa_suite.envs.loading import EnvSpec, make_gym_env, parse_env_kwargs, reward_threshold
from tfa_suite.errors import UserError

MODULE = "tests.envs_for_tests"


# --- parse_env_kwargs -----------------------------------------------------------------


def test_parse_env_kwargs_reads_a_json_object():
    assert parse_env_kwargs('{"continuous": false, "g": 9.8, "name": "x"}') == {
        "continuous": False,
        "g": 9.8,
        "name": "x",
    }


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_parse_env_kwargs_blank_is_empty(text):
    assert parse_env_kwargs(text) == {}


@pytest.mark.parametrize("text", ["{bad json}", "{'single': 1}", '{"a": 1', "continuous=false"])
def test_parse_env_kwargs_bad_json_names_the_flag(text):
    with pytest.raises(UserError) as info:
        parse_env_kwargs(text)
    message = str(info.value)
    assert message.startswith("--env_kwargs")
    assert "not valid JSON" in message
    assert repr(text) in message


@pytest.mark.parametrize("text", ["[1, 2]", "3", '"text"', "null", "true"])
def test_parse_env_kwargs_non_object_names_the_flag(text):
    with pytest.raises(UserError) as info:
        parse_env_kwargs(text)
    message = str(info.value)
    assert "--env_kwargs must be a JSON object" in message
    assert repr(text) in message


# --- kwargs and time limits for gymnasium ids ------------------------------------------


def test_cartpole_kwargs_pass_through_and_change_the_rewards():
    plain = make_gym_env(EnvSpec("CartPole-v1"))
    sutton = make_gym_env(EnvSpec("CartPole-v1", parse_env_kwargs('{"sutton_barto_reward": true}')))
    plain.reset(seed=0)
    sutton.reset(seed=0)
    # Sutton & Barto's reward is 0 on every non-terminal step, the default is 1.
    assert plain.step(0)[1] == 1.0
    assert sutton.step(0)[1] == 0.0
    assert sutton.unwrapped._sutton_barto_reward is True


def test_mountaincar_goal_velocity_passes_through():
    env = make_gym_env(EnvSpec("MountainCar-v0", {"goal_velocity": 0.03}))
    assert env.unwrapped.goal_velocity == 0.03
    assert make_gym_env(EnvSpec("MountainCar-v0")).unwrapped.goal_velocity == 0


def test_unknown_kwarg_is_a_user_error_naming_env_kwargs():
    with pytest.raises(UserError) as info:
        make_gym_env(EnvSpec("CartPole-v1", {"no_such_kwarg": 1}))
    message = str(info.value)
    assert "--env=CartPole-v1" in message
    assert "--env_kwargs" in message
    assert "no_such_kwarg" in message


def test_max_episode_steps_overrides_the_registered_time_limit():
    env = make_gym_env(EnvSpec("CartPole-v1", max_episode_steps=7))
    assert env.spec.max_episode_steps == 7
    env.reset(seed=0)
    truncated_at = None
    for t in range(1, 20):
        _, _, terminated, truncated, _ = env.step(t % 2)
        assert not terminated
        if truncated:
            truncated_at = t
            break
    assert truncated_at == 7


def test_zero_max_episode_steps_keeps_the_registered_limit():
    assert make_gym_env(EnvSpec("CartPole-v1")).spec.max_episode_steps == 500


def test_render_asks_for_rgb_array_frames():
    env = make_gym_env(EnvSpec("CartPole-v1"), render=True)
    assert env.render_mode == "rgb_array"
    env.reset(seed=0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    env.close()
    assert make_gym_env(EnvSpec("CartPole-v1")).render_mode is None


# --- errors for --env -----------------------------------------------------------------


@pytest.mark.parametrize("env_id", ["NoSuchEnvironment-v0", "CartPole-v99"])
def test_unknown_gymnasium_id_is_a_user_error_naming_it(env_id):
    with pytest.raises(UserError) as info:
        make_gym_env(EnvSpec(env_id))
    assert env_id in str(info.value)
    assert str(info.value).startswith("--env=")


def test_bad_module_in_import_path_names_the_module():
    with pytest.raises(UserError) as info:
        make_gym_env(EnvSpec("no_such_package_xyz.envs:MyEnv"))
    message = str(info.value)
    assert "cannot import module 'no_such_package_xyz.envs'" in message
    assert "--env=no_such_package_xyz.envs:MyEnv" in message


@pytest.mark.parametrize("env", [":CountdownEnv", ".envs_for_tests:CountdownEnv"])
def test_malformed_module_in_import_path_is_a_user_error(env):
    with pytest.raises(UserError, match="cannot import module"):
        make_gym_env(EnvSpec(env))


def test_not_callable_attribute_is_a_user_error():
    with pytest.raises(UserError) as info:
        make_gym_env(EnvSpec(f"{MODULE}:NOT_CALLABLE"))
    message = str(info.value)
    assert "'NOT_CALLABLE'" in message
    assert "not a class or function" in message


def test_factory_returning_a_non_env_is_a_user_error():
    with pytest.raises(UserError) as info:
        make_gym_env(EnvSpec(f"{MODULE}:not_an_env", {"a": 1}))
    message = str(info.value)
    assert "returned dict" in message
    assert "not a gymnasium.Env" in message


def test_user_class_rejecting_kwargs_is_a_user_error():
    with pytest.raises(UserError) as info:
        make_gym_env(EnvSpec(f"{MODULE}:CountdownEnv", {"lenght": 3}))
    assert "--env_kwargs" in str(info.value)
    assert "lenght" in str(info.value)


# --- user environments by import path -------------------------------------------------


def test_user_class_is_built_with_kwargs():
    env = make_gym_env(EnvSpec(f"{MODULE}:CountdownEnv", {"length": 5, "reward_scale": 2.0}))
    assert isinstance(env, CountdownEnv)  # no wrapper without max_episode_steps
    assert env.length == 5 and env.reward_scale == 2.0
    env.reset(seed=0)
    rewards = []
    terminated = False
    while not terminated:
        _, reward, terminated, _, _ = env.step(0)
        rewards.append(reward)
    assert rewards == [2.0, 4.0, 6.0, 8.0, 10.0]


def test_max_episode_steps_wraps_a_user_class_in_a_time_limit():
    env = make_gym_env(EnvSpec(f"{MODULE}:NeverEndingEnv", max_episode_steps=3))
    assert isinstance(env, gym.wrappers.TimeLimit)
    assert isinstance(env.unwrapped, NeverEndingEnv)
    env.reset(seed=0)
    results = [env.step(0)[2:4] for _ in range(3)]
    assert results == [(False, False), (False, False), (False, True)]


def test_user_factory_function_is_called_with_kwargs():
    env = make_gym_env(EnvSpec(f"{MODULE}:make_truncated_env", {"limit": 2}))
    env.reset(seed=0)
    assert env.step(0)[3] is False
    assert env.step(0)[3] is True


def test_render_mode_is_passed_only_to_classes_that_accept_it():
    accepting = make_gym_env(EnvSpec(f"{MODULE}:CountdownEnv"), render=True)
    assert accepting.render_mode == "rgb_array"
    # NeverEndingEnv takes no render_mode: passing one would raise TypeError.
    other = make_gym_env(EnvSpec(f"{MODULE}:NeverEndingEnv"), render=True)
    assert isinstance(other, NeverEndingEnv)


def test_gymnasium_module_colon_id_form_imports_and_makes_the_env():
    env = make_gym_env(EnvSpec(f"{MODULE}:{envs_for_tests.COUNTDOWN_ID}"))
    assert isinstance(env.unwrapped, CountdownEnv)
    assert env.unwrapped.length == 3


# --- reward_threshold -----------------------------------------------------------------


def test_reward_threshold_of_registered_ids():
    assert reward_threshold(EnvSpec("CartPole-v1")) == 475.0
    assert reward_threshold(EnvSpec("CartPole-v0")) == 195.0
    assert reward_threshold(EnvSpec("MountainCar-v0")) == -110.0


def test_reward_threshold_is_none_for_an_import_path_class():
    assert reward_threshold(EnvSpec(f"{MODULE}:CountdownEnv")) is None


def test_reward_threshold_of_unknown_id_is_a_user_error():
    with pytest.raises(UserError, match="NoSuchEnvironment"):
        reward_threshold(EnvSpec("NoSuchEnvironment-v0"))


def test_reward_threshold_of_gymnasium_module_colon_id_form():
    env_id = f"{MODULE}:{envs_for_tests.COUNTDOWN_ID}"
    make_gym_env(EnvSpec(env_id))  # the env itself loads
    assert reward_threshold(EnvSpec(env_id)) == envs_for_tests.COUNTDOWN_REWARD_THRESHOLD


# --- EnvSpec JSON ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        EnvSpec("CartPole-v1"),
        EnvSpec("MountainCar-v0", {"goal_velocity": 0.03}, 200),
        EnvSpec(f"{MODULE}:CountdownEnv", {"length": 4, "reward_scale": 0.5}, 10),
    ],
)
def test_env_spec_json_round_trip(spec):
    text = json.dumps(spec.to_json())
    restored = EnvSpec.from_json(json.loads(text))
    assert restored == spec
    assert json.loads(text) == {
        "env": spec.env,
        "kwargs": spec.kwargs,
        "max_episode_steps": spec.max_episode_steps,
    }


def test_env_spec_from_json_fills_defaults():
    assert EnvSpec.from_json({"env": "CartPole-v1"}) == EnvSpec("CartPole-v1", {}, 0)


def test_env_spec_kwargs_default_is_not_shared():
    a, b = EnvSpec("CartPole-v1"), EnvSpec("CartPole-v1")
    assert a.kwargs is not b.kwargs
