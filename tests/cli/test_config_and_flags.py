"""Config sections, their validation, the absl flags generated from them, and saved forms."""

from __future__ import annotations

import tfa_suite  # noqa: F401  -- first: it selects Keras 2 before TensorFlow loads

# isort: split

import dataclasses
import json
import math

import pytest
from absl import flags

from tfa_suite.agents.actor_critic import SacConfig, Td3Config
from tfa_suite.agents.dqn import DqnConfig
from tfa_suite.catalog import config_from_json, make_config
from tfa_suite.config import RunConfig, TrainConfig, describe, identity_fields, validate
from tfa_suite.errors import UserError
from tfa_suite.flags import config_from_flags, define_flags
from tfa_suite.loops.replay import ReplayConfig

NAN = float("nan")


def same_config(a: TrainConfig, b: TrainConfig) -> bool:
    """Field-by-field equality in which NaN equals NaN (target_return defaults to NaN)."""
    x, y = a.flat(), b.flat()
    if x.keys() != y.keys():
        return False
    for name in x:
        u, v = x[name], y[name]
        if isinstance(u, float) and isinstance(v, float) and math.isnan(u) and math.isnan(v):
            continue
        if u != v or type(u) is not type(v):
            return False
    return True


def parse(argv: list[str]) -> TrainConfig:
    flag_values = flags.FlagValues()
    define_flags(flag_values)
    flag_values(["prog", *argv])
    return config_from_flags(flag_values)


# --- sections ---------------------------------------------------------------------------


def test_default_config_has_the_dqn_sections_and_validates():
    config = make_config()
    assert isinstance(config.run, RunConfig)
    assert isinstance(config.loop, ReplayConfig)
    assert isinstance(config.agent, DqnConfig)
    before = config.to_json()
    validate(config)  # raises UserError if rejected
    assert config.to_json() == before  # validation never alters the config


def test_each_agent_gets_its_own_section_and_defaults():
    sac, td3 = make_config(agent="sac"), make_config(agent="td3")
    assert isinstance(sac.agent, SacConfig) and isinstance(td3.agent, Td3Config)
    # The same field name keeps each agent's own default.
    assert sac.agent.target_update_period == 1 and td3.agent.target_update_period == 2
    assert make_config().agent.target_update_tau == 1.0 and sac.agent.target_update_tau == 0.005


def test_a_field_of_another_agent_is_refused_naming_the_agent_and_its_flags():
    with pytest.raises(UserError) as info:
        make_config(agent="sac", epsilon_start=0.5)
    message = str(info.value)
    assert message.startswith("--epsilon_start does not apply to --agent=sac (replay loop)")
    assert "--alpha_learning_rate" in message and "--batch_size" in message
    assert "--epsilon_end" not in message
    assert "\n" not in message


def test_replace_moves_fields_into_their_sections():
    config = make_config(fc_layers=[8]).replace(num_env_steps=7, batch_size=3, gamma=0.5)
    assert config.run.num_env_steps == 7
    assert config.loop.batch_size == 3
    assert config.agent.gamma == 0.5 and config.agent.fc_layers == [8]


# --- validate -------------------------------------------------------------------------


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
        {
            "replay_capacity": 64,
            "initial_collect_steps": 64,
            "num_envs": 2,
            "collect_steps_per_iteration": 2,
        },
        {"backend": "python"},
        {"backend": "graph"},
        {"loss": "squared"},
        {"fc_layers": [1]},
        {"video_episodes": 0},
    ],
)
def test_boundary_values_validate(overrides):
    config = make_config(**overrides)
    validate(config)  # raises UserError if rejected
    assert {k: config.flat()[k] for k in overrides} == overrides


@pytest.mark.parametrize(
    "overrides, flag",
    [
        ({"env": ""}, "--env"),
        ({"env": "   "}, "--env"),
        ({"backend": "gpu"}, "--backend"),
        ({"loss": "l1"}, "--loss"),
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
        ({"replay_capacity": 10, "batch_size": 64}, "--replay_capacity"),
        ({"replay_capacity": 500, "initial_collect_steps": 1000}, "--replay_capacity"),
        ({"collect_steps_per_iteration": 3, "num_envs": 2}, "--collect_steps_per_iteration"),
        ({"initial_collect_steps": 10, "batch_size": 64}, "--initial_collect_steps"),
    ],
)
def test_validate_rejects_naming_the_flag(overrides, flag):
    with pytest.raises(UserError) as info:
        validate(make_config(**overrides))
    assert flag in str(info.value)
    assert "\n" not in str(info.value)  # one line, as the binaries print it


def test_inconsistent_values_name_both_flags_and_values():
    with pytest.raises(UserError) as info:
        validate(make_config(collect_steps_per_iteration=3, num_envs=2))
    message = str(info.value)
    assert "--collect_steps_per_iteration (3)" in message and "--num_envs (2)" in message

    with pytest.raises(UserError) as info:
        validate(make_config(initial_collect_steps=10, batch_size=64))
    message = str(info.value)
    assert "(10)" in message and "--batch_size (64)" in message


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_validate_rejects_out_of_range_seed(seed):
    with pytest.raises(UserError, match="--seed"):
        validate(make_config(seed=seed))


# --- flags ----------------------------------------------------------------------------


def test_flags_round_trip_into_the_config():
    config = parse(["--fc_layers=32,16", "--double_dqn", "--learning_rate=0.01"])
    assert config.agent.fc_layers == [32, 16]
    assert config.agent.double_dqn is True
    assert config.agent.learning_rate == 0.01
    # Everything else keeps the dataclass defaults, with their types.
    expected = make_config(fc_layers=[32, 16], double_dqn=True, learning_rate=0.01)
    assert same_config(config, expected)
    validate(config)


def test_no_flags_give_the_default_config():
    assert same_config(parse([]), make_config())


def test_a_flag_whose_default_differs_by_agent_takes_the_chosen_agents_default():
    assert parse(["--agent=td3"]).agent.target_update_period == 2
    assert parse(["--agent=sac"]).agent.target_update_period == 1
    assert parse(["--agent=dqn"]).agent.target_update_period == 1000
    assert parse(["--agent=sac", "--target_update_period=3"]).agent.target_update_period == 3


@pytest.mark.parametrize(
    "argv, refused",
    [
        (["--agent=sac", "--epsilon_start=0.2"], "--epsilon_start"),
        (["--agent=c51", "--double_dqn"], "--double_dqn"),
        (["--agent=c51", "--loss=squared"], "--loss"),
        (["--agent=dqn", "--actor_layers=8"], "--actor_layers"),
        (["--agent=ddpg", "--actor_update_period=2"], "--actor_update_period"),
    ],
)
def test_flags_of_another_agent_are_refused_in_one_line(argv, refused):
    agent = argv[0].split("=")[1]
    with pytest.raises(UserError) as info:
        parse(argv)
    message = str(info.value)
    assert message.startswith(f"{refused} does not apply to --agent={agent}")
    assert "\n" not in message


def test_flags_from_a_flagfile_are_refused_too(tmp_path):
    path = tmp_path / "sac.cfg"
    path.write_text("--agent=sac\n--n_step=3\n")
    with pytest.raises(UserError, match="--n_step does not apply to --agent=sac"):
        parse([f"--flagfile={path}"])


def test_unknown_agent_is_refused_listing_the_known_ones():
    with pytest.raises(UserError) as info:
        parse(["--agent=ppo2"])
    known = "a2c, c51, ddpg, dqn, ppo, reinforce, sac, tabular_q, td3"
    assert f"unknown --agent 'ppo2'; known: {known}" in str(info.value)


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
    assert config.run.env == "MountainCar-v0"
    assert json.loads(config.run.env_kwargs) == {"goal_velocity": 0.03}
    assert config.run.seed == 7 and type(config.run.seed) is int
    assert config.agent.gamma == 0.9 and type(config.agent.gamma) is float
    assert config.run.stop_at_threshold is False
    assert config.run.target_return == -110.0 and type(config.run.target_return) is float
    assert config.agent.fc_layers == [64]
    assert config.agent.loss == "squared"


def test_flag_help_comes_from_the_field_metadata():
    flag_values = flags.FlagValues()
    define_flags(flag_values)
    assert flag_values["gamma"].help == "discount factor"
    assert flag_values["alpha_learning_rate"].help.startswith("Adam learning rate")
    # Defaults that differ by agent are listed in the help.
    assert "DqnConfig: 1.0" in flag_values["target_update_tau"].help
    for cls in (RunConfig, ReplayConfig, DqnConfig, SacConfig, Td3Config):
        assert {f.name for f in dataclasses.fields(cls)} <= set(flag_values)


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
    assert config.agent.fc_layers == []
    with pytest.raises(UserError, match="--fc_layers"):
        validate(config)


# --- describe() as a flagfile ---------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        make_config(),
        make_config(
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
        make_config(agent="sac", target_entropy=-2.0, critic_observation_layers=[16]),
        make_config(agent="td3", exploration_noise="ou", target_update_tau=0.01),
    ],
    ids=["defaults", "everything-changed", "sac", "td3"],
)
def test_describe_parses_back_as_a_flagfile(config, tmp_path):
    text = describe(config)
    lines = text.splitlines()
    assert len(lines) == len(config.flat())
    assert all(line.startswith("--") for line in lines)
    path = tmp_path / "flags.txt"
    path.write_text(text)
    restored = parse([f"--flagfile={path}"])
    assert same_config(restored, config), (restored, config)


def test_describe_writes_lists_and_nan_readably():
    text = describe(make_config(fc_layers=[8, 4]))
    assert "--fc_layers=8,4\n" in text
    assert "--target_return=nan\n" in text
    assert "--double_dqn=False\n" in text


# --- JSON form and defaults -----------------------------------------------------------


def test_save_and_config_from_json_round_trip_by_section(tmp_path):
    config = make_config(env="MountainCar-v0", fc_layers=[8], seed=2, target_return=-120.0)
    path = tmp_path / "config.json"
    config.save(str(path))
    data = json.loads(path.read_text())
    assert sorted(data) == ["agent", "loop", "run"]
    assert data["agent"]["fc_layers"] == [8] and data["run"]["env"] == "MountainCar-v0"
    assert "batch_size" in data["loop"]
    assert same_config(config_from_json(data), config)


def test_config_from_json_reads_a_flat_config_from_before_the_sections():
    # A config.json written before the sections: one flat object with C51 fields too.
    old = {"seed": 4, "fc_layers": [32], "num_atoms": 51, "batch_size": 16, "removed": 1}
    config = config_from_json(old)
    assert config.run.seed == 4 and config.agent.fc_layers == [32]
    assert config.loop.batch_size == 16


def test_list_defaults_are_not_shared_between_configs():
    a, b = make_config(), make_config()
    a.agent.fc_layers.append(1)
    assert b.agent.fc_layers == [256, 256]


def test_identity_fields_are_config_fields_minus_the_resumable_ones():
    config = make_config()
    identity = {name for _, name in identity_fields(config)}
    resumable = set().union(*(section.RESUMABLE for section in config.sections().values()))
    assert identity == set(config.flat()) - resumable
    assert RunConfig.RESUMABLE <= resumable
    # Learning hyperparameters and what the checkpoint holds define the experiment.
    for name in ("learning_rate", "gamma", "backend", "checkpoint_replay", "env", "seed", "agent"):
        assert name in identity
    assert "num_env_steps" not in identity  # a rerun may extend a run


@pytest.mark.parametrize(
    "env, agent, seed, expected",
    [
        ("CartPole-v1", "dqn", 0, "runs/CartPole-v1-dqn-seed0"),
        ("MountainCar-v0", "dqn", 12, "runs/MountainCar-v0-dqn-seed12"),
        ("ALE/Pong-v5", "dqn", 1, "runs/ALE_Pong-v5-dqn-seed1"),
        ("Pendulum-v1", "sac", 2, "runs/Pendulum-v1-sac-seed2"),
        ("tests.envs_for_tests:CountdownEnv", "dqn", 3, "runs/CountdownEnv-dqn-seed3"),
        ("my_pkg:My Env!-v0", "dqn", 0, "runs/My_Env_-v0-dqn-seed0"),
    ],
)
def test_default_root_dir_naming(env, agent, seed, expected):
    assert make_config(env=env, agent=agent, seed=seed).default_root_dir() == expected


# --- non-finite values and strict JSON -----------------------------------------------


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(agent="sac", target_entropy=math.inf), "--target_entropy must be a finite number"),
        (dict(target_return=-math.inf), "--target_return must be a finite number"),
        (dict(learning_rate=math.nan), "--learning_rate must be a number, not nan"),
        (dict(agent="ppo", learning_rate=math.inf), "--learning_rate must be a finite number"),
    ],
)
def test_non_finite_values_are_refused_where_they_cannot_work(fields, message):
    with pytest.raises(UserError, match=message):
        validate(make_config(**fields))


def test_nan_stays_allowed_where_it_means_unset():
    config = make_config(agent="sac", target_entropy=NAN, target_return=NAN)
    validate(config)  # raises UserError if NaN were refused here
    assert math.isnan(config.agent.target_entropy) and math.isnan(config.run.target_return)
    # Allowed because NaN is these fields' own default, meaning "unset".
    defaults = {f.name: f.default for f in dataclasses.fields(config.agent)}
    defaults.update({f.name: f.default for f in dataclasses.fields(config.run)})
    assert math.isnan(defaults["target_entropy"]) and math.isnan(defaults["target_return"])


def test_config_json_is_strict_json_and_reads_back_nan(tmp_path):
    config = make_config(agent="sac", env="Pendulum-v1")
    config.save(str(tmp_path / "config.json"))
    text = (tmp_path / "config.json").read_text()
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in config.json"))
    assert data["agent"]["target_entropy"] is None and data["run"]["target_return"] is None
    again = config_from_json(data)
    assert math.isnan(again.agent.target_entropy) and math.isnan(again.run.target_return)
    assert again.to_json().keys() == config.to_json().keys()


# --- --help: the chosen agent's sections ---------------------------------------------


def test_help_lists_the_chosen_agents_sections_only(tmp_path):
    from tfa_suite.flags import help_requested

    text = help_requested(["train.py", "--agent=sac", "--help"])
    for title in ("run (every agent):", "loop (replay loop):", "agent (sac):"):
        assert title in text
    assert "--alpha_learning_rate" in text and "--epsilon_start" not in text
    # The agent's own defaults: SAC's tau, not DQN's.
    assert "--target_update_tau  (default: 0.005)" in text
    flagfile = tmp_path / "ppo.cfg"
    flagfile.write_text("--agent=ppo\n")
    text = help_requested(["train.py", f"--flagfile={flagfile}", "-h"])
    assert "agent (ppo):" in text and "loop (rollout loop):" in text
    assert help_requested(["train.py", "--agent=sac"]) is None
    with pytest.raises(UserError, match="unknown --agent 'nope'"):
        help_requested(["train.py", "--agent=nope", "--help"])


def test_the_binary_prints_the_agents_help(binaries):
    proc = binaries.run("experiments/train.py", "--agent=td3", "--help")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "agent (td3):" in proc.stdout and "--actor_update_period" in proc.stdout
    assert "tpu" not in proc.stdout.lower()  # absl's own flags stay behind --helpfull
