"""TrainConfig validation, the absl flags generated from it, and its saved forms."""

from __future__ import annotations

import tfa_suite  # noqa: F401  -- first: it selects Keras 2 before TensorFlow loads

# isort: split

import dataclasses
import json
import math

import pytest
from absl import flags

from tfa_suite.config import RESUMABLE_FIELDS, TrainConfig, identity_fields, validate
from tfa_suite.errors import UserError
from tfa_suite.flags import config_from_flags, define_flags, describe

NAN = float("nan")


def same_config(a: TrainConfig, b: TrainConfig) -> bool:
    """Field-by-field equality in which NaN equals NaN (target_return defaults to NaN)."""
    for field in dataclasses.fields(TrainConfig):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
            continue
        if x != y or type(x) is not type(y):
            return False
    return True


def parse(argv: list[str]) -> TrainConfig:
    flag_values = flags.FlagValues()
    define_flags(TrainConfig, flag_values)
    flag_values(["prog", *argv])
    return config_from_flags(TrainConfig, flag_values)


# --- validate -------------------------------------------------------------------------


def test_default_config_validates():
    config = TrainConfig()
    before = config.to_json()
    validate(config)  # raises UserError if rejected
    assert config.to_json() == before  # validation never alters the config


@pytest.mark.parametrize(
    "overrides",
    [
        {"gamma": 0.0},
        {"gamma": 1.0},
        {"target_update_tau": 1.0},
        {"target_update_tau": 0.005},
        {"epsilon_start": 0.0, "epsilon_end": 0.0, "epsilon_decay_steps": 0},
        {"epsilon_start": 1.0, "epsilon_end": 1.0},
        {"eval_interval": 0},
        {"gradient_clipping": 0.0},
        {"max_episode_steps": 0},
        {"initial_collect_steps": 0, "train_steps_per_iteration": 0},
        {"initial_collect_steps": 64, "batch_size": 64},
        {"num_envs": 4, "collect_steps_per_iteration": 8},
        {"replay_capacity": 4, "num_envs": 2, "n_step": 1, "collect_steps_per_iteration": 2},
        {"backend": "python"},
        {"backend": "graph"},
        {"loss": "squared"},
        {"fc_layers": [1]},
        {"video_episodes": 0},
    ],
)
def test_boundary_values_validate(overrides):
    config = TrainConfig(**overrides)
    validate(config)  # raises UserError if rejected
    assert {k: getattr(config, k) for k in overrides} == overrides


@pytest.mark.parametrize(
    "overrides, flag",
    [
        ({"env": ""}, "--env"),
        ({"env": "   "}, "--env"),
        ({"backend": "gpu"}, "--backend"),
        ({"loss": "l1"}, "--loss"),
        ({"agent": "c51", "double_dqn": True}, "--double_dqn"),
        ({"mixed_precision": "fp16"}, "--mixed_precision"),
        ({"fc_layers": []}, "--fc_layers"),
        ({"fc_layers": [32, 0]}, "--fc_layers"),
        ({"fc_layers": [-8]}, "--fc_layers"),
        ({"learning_rate": 0.0}, "--learning_rate"),
        ({"learning_rate": -1e-3}, "--learning_rate"),
        ({"learning_rate": NAN}, "--learning_rate"),
        ({"gamma": -0.01}, "--gamma"),
        ({"gamma": 1.01}, "--gamma"),
        ({"gamma": 2.0}, "--gamma"),
        ({"gamma": NAN}, "--gamma"),
        ({"n_step": 0}, "--n_step"),
        ({"gradient_clipping": -1.0}, "--gradient_clipping"),
        ({"target_update_period": 0}, "--target_update_period"),
        ({"target_update_tau": 0.0}, "--target_update_tau"),
        ({"target_update_tau": 1.5}, "--target_update_tau"),
        ({"epsilon_start": -0.1}, "--epsilon_start"),
        ({"epsilon_start": 1.1}, "--epsilon_start"),
        ({"epsilon_end": 2.0}, "--epsilon_end"),
        ({"epsilon_end": -1.0}, "--epsilon_end"),
        ({"epsilon_decay_steps": -1}, "--epsilon_decay_steps"),
        ({"num_envs": 0}, "--num_envs"),
        ({"batch_size": 0}, "--batch_size"),
        ({"max_episode_steps": -1}, "--max_episode_steps"),
        ({"initial_collect_steps": -1}, "--initial_collect_steps"),
        ({"collect_steps_per_iteration": 0}, "--collect_steps_per_iteration"),
        ({"train_steps_per_iteration": -1}, "--train_steps_per_iteration"),
        ({"num_env_steps": 0}, "--num_env_steps"),
        ({"eval_interval": -1}, "--eval_interval"),
        ({"eval_episodes": 0}, "--eval_episodes"),
        ({"checkpoint_interval": 0}, "--checkpoint_interval"),
        ({"log_interval_seconds": 0.0}, "--log_interval_seconds"),
        ({"video_episodes": -1}, "--video_episodes"),
        # Inconsistent combinations.
        ({"replay_capacity": 3, "num_envs": 2, "n_step": 1}, "--replay_capacity"),
        ({"replay_capacity": 10, "n_step": 10}, "--replay_capacity"),
        ({"collect_steps_per_iteration": 3, "num_envs": 2}, "--collect_steps_per_iteration"),
        ({"initial_collect_steps": 10, "batch_size": 64}, "--initial_collect_steps"),
    ],
)
def test_validate_rejects_naming_the_flag(overrides, flag):
    with pytest.raises(UserError) as info:
        validate(TrainConfig(**overrides))
    assert flag in str(info.value)
    assert "\n" not in str(info.value)  # one line, as the binaries print it


def test_inconsistent_values_name_both_flags_and_values():
    with pytest.raises(UserError) as info:
        validate(TrainConfig(collect_steps_per_iteration=3, num_envs=2))
    message = str(info.value)
    assert "--collect_steps_per_iteration (3)" in message and "--num_envs (2)" in message

    with pytest.raises(UserError) as info:
        validate(TrainConfig(initial_collect_steps=10, batch_size=64))
    message = str(info.value)
    assert "(10)" in message and "--batch_size (64)" in message


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_validate_rejects_out_of_range_seed(seed):
    with pytest.raises(UserError, match="--seed"):
        validate(TrainConfig(seed=seed))


# --- flags ----------------------------------------------------------------------------


def test_flags_round_trip_into_the_config():
    config = parse(["--fc_layers=32,16", "--double_dqn", "--learning_rate=0.01"])
    assert config.fc_layers == [32, 16]
    assert config.double_dqn is True
    assert config.learning_rate == 0.01
    # Everything else keeps the dataclass defaults, with their types.
    expected = dataclasses.replace(
        TrainConfig(), fc_layers=[32, 16], double_dqn=True, learning_rate=0.01
    )
    assert same_config(config, expected)
    validate(config)


def test_no_flags_give_the_default_config():
    assert same_config(parse([]), TrainConfig())


def test_every_field_becomes_a_typed_flag():
    config = parse(
        [
            "--env=MountainCar-v0",
            '--env_kwargs={"goal_velocity": 0.03}',
            "--seed=7",
            "--gamma=0.9",
            "--nostop_at_threshold",
            "--target_return=-110",
            "--fc_layers=64",
            "--loss=squared",
        ]
    )
    assert config.env == "MountainCar-v0"
    assert json.loads(config.env_kwargs) == {"goal_velocity": 0.03}
    assert config.seed == 7 and type(config.seed) is int
    assert config.gamma == 0.9 and type(config.gamma) is float
    assert config.stop_at_threshold is False
    assert config.target_return == -110.0 and type(config.target_return) is float
    assert config.fc_layers == [64]
    assert config.loss == "squared"


def test_flag_help_comes_from_the_field_metadata():
    flag_values = flags.FlagValues()
    define_flags(TrainConfig, flag_values)
    assert flag_values["gamma"].help == "discount factor"
    assert {f.name for f in dataclasses.fields(TrainConfig)} <= set(flag_values)


@pytest.mark.parametrize("argv", [["--seed=1.5"], ["--num_envs=two"], ["--gamma=high"]])
def test_wrongly_typed_flag_values_are_rejected_by_absl(argv):
    with pytest.raises(flags.IllegalFlagValueError):
        parse(argv)


@pytest.mark.parametrize("value", ["32,abc", "1.5", "64,,x"])
def test_non_integer_fc_layers_is_a_user_error(value):
    with pytest.raises(UserError) as info:
        parse([f"--fc_layers={value}"])
    assert "--fc_layers must be comma-separated integers" in str(info.value)


def test_empty_fc_layers_parses_then_fails_validation():
    config = parse(["--fc_layers="])
    assert config.fc_layers == []
    with pytest.raises(UserError, match="--fc_layers"):
        validate(config)


# --- describe() as a flagfile ---------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        TrainConfig(),
        TrainConfig(
            env="tests.envs_for_tests:CountdownEnv",
            env_kwargs='{"length": 5, "reward_scale": 0.5}',
            max_episode_steps=9,
            root_dir="/tmp/some run",
            seed=3,
            fc_layers=[64, 32, 16],
            learning_rate=2.5e-4,
            gamma=0.97,
            n_step=3,
            double_dqn=True,
            loss="squared",
            target_update_tau=0.005,
            stop_at_threshold=False,
            target_return=-110.5,
            log_interval_seconds=0.25,
        ),
    ],
    ids=["defaults", "everything-changed"],
)
def test_describe_parses_back_as_a_flagfile(config, tmp_path):
    text = describe(config)
    lines = text.splitlines()
    assert len(lines) == len(dataclasses.fields(TrainConfig))
    assert all(line.startswith("--") for line in lines)
    path = tmp_path / "flags.txt"
    path.write_text(text)
    restored = parse([f"--flagfile={path}"])
    assert same_config(restored, config), (restored, config)


def test_describe_writes_lists_and_nan_readably():
    text = describe(TrainConfig(fc_layers=[8, 4]))
    assert "--fc_layers=8,4\n" in text
    assert "--target_return=nan\n" in text
    assert "--double_dqn=False\n" in text


# --- JSON form and defaults -----------------------------------------------------------


def test_save_and_from_json_round_trip(tmp_path):
    config = TrainConfig(env="MountainCar-v0", fc_layers=[8], seed=2, target_return=-120.0)
    path = tmp_path / "config.json"
    config.save(str(path))
    data = json.loads(path.read_text())
    assert data["fc_layers"] == [8] and data["env"] == "MountainCar-v0"
    assert same_config(TrainConfig.from_json(data), config)


def test_from_json_ignores_unknown_keys_and_keeps_defaults():
    config = TrainConfig.from_json({"seed": 4, "removed_option": True})
    assert config.seed == 4
    assert config.fc_layers == [256, 256]


def test_list_defaults_are_not_shared_between_configs():
    a, b = TrainConfig(), TrainConfig()
    a.fc_layers.append(1)
    assert b.fc_layers == [256, 256]


def test_identity_fields_are_config_fields():
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    assert RESUMABLE_FIELDS <= names
    assert set(identity_fields()) == names - RESUMABLE_FIELDS
    # Learning hyperparameters and what the checkpoint holds define the experiment.
    for name in ("learning_rate", "gamma", "backend", "checkpoint_replay", "env", "seed"):
        assert name in identity_fields()
    assert "num_env_steps" not in identity_fields()  # a rerun may extend a run


@pytest.mark.parametrize(
    "env, agent, seed, expected",
    [
        ("CartPole-v1", "dqn", 0, "runs/CartPole-v1-dqn-seed0"),
        ("MountainCar-v0", "dqn", 12, "runs/MountainCar-v0-dqn-seed12"),
        ("ALE/Pong-v5", "dqn", 1, "runs/ALE_Pong-v5-dqn-seed1"),
        ("tests.envs_for_tests:CountdownEnv", "dqn", 3, "runs/CountdownEnv-dqn-seed3"),
        ("my_pkg:My Env!-v0", "dqn", 0, "runs/My_Env_-v0-dqn-seed0"),
    ],
)
def test_default_root_dir_naming(env, agent, seed, expected):
    assert TrainConfig(env=env, agent=agent, seed=seed).default_root_dir() == expected
