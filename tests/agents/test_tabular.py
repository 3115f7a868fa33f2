"""Tabular Q-learning: the observation grid, the update rule, the greedy policy, a tiny run
with its export and resume, and the one-line refusals of bad flags."""

from __future__ import annotations

import tfa_suite  # noqa: F401  -- first: it selects Keras 2 before TensorFlow loads

# isort: split

import csv
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from tf_agents.metrics import tf_metrics
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory

from tfa_suite.agents import AgentContext
from tfa_suite.agents.tabular import DEFAULT_GRIDS, ObservationGrid, TabularQAgent
from tfa_suite.catalog import build_agent, make_config
from tfa_suite.config import EVAL_SEED_OFFSET
from tfa_suite.errors import UnsupportedSpaceError, UserError
from tfa_suite.flags import config_from_flagfile, config_from_flags, define_flags
from tfa_suite.policy.saved import SavedPolicy
from tfa_suite.run.train import train

FIRST, MID, LAST = ts.StepType.FIRST, ts.StepType.MID, ts.StepType.LAST

# --- the grid ---------------------------------------------------------------------------


def test_grid_bins_clip_at_the_edges_and_flatten_row_major():
    # Dimension 0: 2 bins of 0.5 over [0, 1]; dimension 1: 3 bins of 1.0 over [-1, 2].
    grid = ObservationGrid([2, 3], [0.0, -1.0], [1.0, 2.0])
    assert grid.num_states == 6
    observations = tf.constant(
        [
            [0.1, -0.5],  # bins (0, 0)
            [0.6, 0.2],  # (1, 1)
            [0.4, 1.9],  # (0, 2)
            [0.9, -0.9],  # (1, 0): 3 row-major; column-major would say 1
            [0.5, 0.0],  # on inner edges: the upper bin, (1, 1)
            [-5.0, -9.0],  # below both lows: (0, 0)
            [7.0, 100.0],  # above both highs: (1, 2)
            [1.0, 2.0],  # exactly the highs: the last bins, (1, 2)
            [0.0, 1e30],  # the low edge; a value that would overflow int64: (0, 2)
        ],
        tf.float32,
    )
    np.testing.assert_array_equal(
        grid.bins(observations).numpy(),
        [[0, 0], [1, 1], [0, 2], [1, 0], [1, 1], [0, 0], [1, 2], [1, 2], [0, 2]],
    )
    index = grid(observations)
    assert index.dtype == tf.int64
    np.testing.assert_array_equal(index.numpy(), [0, 4, 2, 3, 4, 0, 5, 5, 2])


def test_grid_first_dimension_varies_slowest_over_every_cell():
    grid = ObservationGrid([2, 3, 4], [0.0] * 3, [2.0, 3.0, 4.0])
    centers = np.array([[i + 0.5, j + 0.5, k + 0.5] for i in range(2) for j in range(3)
                        for k in range(4)], np.float32)  # fmt: skip
    np.testing.assert_array_equal(grid(centers).numpy(), np.arange(24))


# --- the update rule ----------------------------------------------------------------------


def toy_agent(q_table: list[list[float]], learning_rate: float = 0.5, gamma: float = 0.9):
    """Two states (observation < 0.5 or not), two actions, a table set by hand."""
    spec = ts.time_step_spec(tf.TensorSpec([1], tf.float32, name="observation"))
    actions = tensor_spec.BoundedTensorSpec([], tf.int64, 0, 1, name="action")
    counter = tf.Variable(0, dtype=tf.int64)
    agent = TabularQAgent(
        spec,
        actions,
        ObservationGrid([2], [0.0], [1.0]),
        learning_rate=learning_rate,
        gamma=gamma,
        initial_q=0.0,
        epsilon=0.0,
        train_step_counter=counter,
    )
    agent.q_table.assign(q_table)
    return agent, counter


OBS = {0: 0.25, 1: 0.75}  # an observation in each state


def pairs(rows: list[tuple]) -> trajectory.Trajectory:
    """[B, 2] experience from rows (step_type, s, a, r, next_step_type, discount, s')."""
    step, s, a, r, next_step, discount, s2 = (list(c) for c in zip(*rows))
    return trajectory.Trajectory(
        step_type=tf.constant([[t, nt] for t, nt in zip(step, next_step)], tf.int32),
        observation=tf.constant([[[OBS[x]], [OBS[y]]] for x, y in zip(s, s2)], tf.float32),
        action=tf.constant([[x, 0] for x in a], tf.int64),
        policy_info=(),
        next_step_type=tf.constant([[nt, MID] for nt in next_step], tf.int32),
        reward=tf.constant([[x, 0.0] for x in r], tf.float32),
        discount=tf.constant([[d, 1.0] for d in discount], tf.float32),
    )


TOY_BATCH = [
    # s=0, a=1 -> s'=1: target 1 + 0.9 * max(3, 4) = 4.6, TD 4.6 - 2 = 2.6
    (MID, 0, 1, 1.0, MID, 1.0, 1),
    # terminal (discount 0): target -1, no bootstrap from Q[1] = (3, 4); TD -1 - 3 = -4
    (MID, 1, 0, -1.0, LAST, 0.0, 1),
    # (1, 1) twice: targets 0 + 0.9 * 2 = 1.8 and 2 + 0.9 * 4 = 5.6, TDs -2.2 and 1.6
    (MID, 1, 1, 0.0, MID, 1.0, 0),
    (MID, 1, 1, 2.0, MID, 1.0, 1),
    # a LAST -> FIRST pair spans two episodes: skipped, whatever its reward
    (LAST, 0, 0, 100.0, FIRST, 1.0, 1),
]
TOY_TABLE = [[1.0, 2.0], [3.0, 4.0]]
# Q[0,1] = 2 + 0.5 * 2.6; Q[1,0] = 3 + 0.5 * -4; the duplicate pair counts as two
# sequential updates toward its mean target: Q[1,1] = 4 + (1 - 0.5**2) * (-2.2 + 1.6) / 2.
TOY_RESULT = [[1.0, 3.3], [1.0, 3.775]]


def test_update_rule_matches_a_hand_computation():
    agent, counter = toy_agent(TOY_TABLE)
    loss = agent.train(pairs(TOY_BATCH)).loss
    np.testing.assert_allclose(agent.q_table.numpy(), TOY_RESULT, rtol=1e-6)
    # The mean squared TD error of the four valid pairs, before the update.
    assert float(loss) == pytest.approx((2.6**2 + 4.0**2 + 2.2**2 + 1.6**2) / 4, rel=1e-6)
    assert int(counter.numpy()) == 1


def test_update_does_not_depend_on_the_order_of_the_batch():
    agent, _ = toy_agent(TOY_TABLE)
    agent.train(pairs(TOY_BATCH[::-1]))
    np.testing.assert_allclose(agent.q_table.numpy(), TOY_RESULT, rtol=1e-6)


def test_duplicates_with_one_target_equal_sequential_updates():
    terminal = (MID, 0, 0, 3.0, LAST, 0.0, 1)  # target 3 from Q[0,0] = 1
    together, _ = toy_agent(TOY_TABLE)
    together.train(pairs([terminal, terminal]))
    one_by_one, counter = toy_agent(TOY_TABLE)
    one_by_one.train(pairs([terminal]))
    one_by_one.train(pairs([terminal]))
    assert int(counter.numpy()) == 2
    assert float(one_by_one.q_table[0, 0]) == pytest.approx(2.5)  # 1 -> 2 -> 2.5
    np.testing.assert_allclose(together.q_table.numpy(), one_by_one.q_table.numpy(), rtol=1e-6)


# --- policies on CartPole's specs ---------------------------------------------------------


@pytest.fixture(scope="module")
def cartpole_built():
    from tfa_suite.envs.native.cartpole import TFCartPoleEnv

    env = TFCartPoleEnv(batch_size=1, seed=0)
    context = AgentContext(
        time_step_spec=env.time_step_spec(),
        action_spec=env.action_spec(),
        train_step=tf.Variable(0, dtype=tf.int64),
        env_steps=tf_metrics.EnvironmentSteps(),
        initial_collect_steps=100,
    )
    return build_agent(make_config(agent="tabular_q", env="CartPole-v1"), context)


def test_greedy_action_is_the_argmax_of_the_table_row(cartpole_built):
    agent = cartpole_built.agent
    rng = np.random.default_rng(0)
    table = rng.normal(size=agent.q_table.shape).astype(np.float32)
    table[:5] = 0.0  # tied rows: argmax takes the first action, as np.argmax does
    agent.q_table.assign(table)
    observations = tf.constant(rng.normal(size=(512, 4)) * [1.0, 1.0, 0.15, 1.5], tf.float32)
    states = agent._grid(observations).numpy()
    assert len(set(states)) > 20  # many rows are read, not one
    actions = cartpole_built.greedy_policy.action(ts.restart(observations, batch_size=512))
    np.testing.assert_array_equal(actions.action.numpy(), np.argmax(table[states], axis=1))
    # Epsilon is 1 until the initial collection (100 steps) is in: the collect policy is
    # then uniform, and is the initial-collect policy too.
    assert cartpole_built.initial_collect_policy is cartpole_built.collect_policy
    assert float(cartpole_built.scalars["epsilon"]()) == 1.0
    collected = cartpole_built.collect_policy.action(ts.restart(observations, batch_size=512))
    assert 0.4 < collected.action.numpy().mean() < 0.6


# --- a tiny real run: export, evaluate.py, resume -----------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_config):
    root = tmp_path_factory.mktemp("tabular") / "run"
    config = tiny_config(root, agent="tabular_q", eval_interval=200, seed=3)
    return config, train(config)


def test_tiny_run_exports_a_policy_that_evaluate_py_plays_the_same(tiny_run, tmp_path, binaries):
    config, result = tiny_run
    root = config.run.root_dir
    assert result.env_steps >= 400 and result.train_steps >= 40
    with open(os.path.join(root, "metrics.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    epsilons = [float(r["epsilon"]) for r in rows if r["epsilon"]]
    assert epsilons and epsilons[-1] < 1.0  # logged, and decaying after the initial collection
    # The export holds the trained table, and takes raw observations.
    saved = tf.saved_model.load(os.path.join(root, "policy")).model_variables
    [table] = [v.numpy() for v in saved if v.shape.rank == 2]
    assert table.shape == (72, 2) and np.any(table != 0.0)
    policy = SavedPolicy(os.path.join(root, "policy"))
    assert policy.train_step == result.train_steps
    observations = np.random.default_rng(1).normal(size=(64, 4)).astype(np.float32) * 0.1
    states = ObservationGrid([1, 1, 6, 12], [-2.4, -3.0, -0.2095, -2.0], [2.4, 3.0, 0.2095, 2.0])(
        observations
    ).numpy()
    np.testing.assert_array_equal(policy(observations), np.argmax(table[states], axis=1))

    scores = tmp_path / "eval.json"
    proc = binaries.run(
        "experiments/evaluate.py",
        f"--policy_dir={os.path.join(root, 'policy')}",
        "--episodes=2",
        f"--seed={config.run.seed + EVAL_SEED_OFFSET}",
        f"--json={scores}",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads(scores.read_text())
    assert record["policy_train_step"] == result.train_steps
    assert record["mean"] == pytest.approx(result.final_eval_mean, abs=1e-3)


def test_resume_restores_the_table_and_trains_on(tiny_run, tmp_path, tiny_config):
    config, first = tiny_run
    root = str(tmp_path / "copy")
    shutil.copytree(config.run.root_dir, root)
    latest = tf.train.latest_checkpoint(os.path.join(root, "checkpoints"))
    [name] = [n for n, _ in tf.train.list_variables(latest) if "q_table" in n]
    saved_table = tf.train.load_variable(latest, name)
    assert np.any(saved_table != 0.0)
    # As if killed before the export: the rerun restores, trains no more, and exports.
    os.remove(os.path.join(root, "result.json"))
    again = train(config.replace(root_dir=root))
    assert again.train_steps == first.train_steps
    exported = tf.saved_model.load(os.path.join(root, "policy")).model_variables
    [table] = [v.numpy() for v in exported if v.shape.rank == 2]
    np.testing.assert_array_equal(table, saved_table)
    # Extended: it resumes where it stopped (assert_fully_restored raises on leftovers).
    extended = train(config.replace(root_dir=root, num_env_steps=600))
    assert extended.resumed_from_env_steps == first.env_steps
    assert extended.env_steps >= 600 and extended.train_steps > first.train_steps


# --- the shipped configs ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cartpole_tabular", "mountaincar_tabular"])
def test_shipped_configs_state_the_default_grid(binaries, name):
    # (tests/cli/test_shipped_configs.py validates every config.) Their comments say the grid
    # is the env's default: keep the two from drifting apart.
    config = config_from_flagfile(str(binaries.repo / "experiments" / "configs" / f"{name}.cfg"))
    assert config.run.agent == "tabular_q"
    grid = (config.agent.grid_sizes, config.agent.obs_low, config.agent.obs_high)
    assert grid == DEFAULT_GRIDS[config.run.env]


# --- bad flags: one line each, before the root dir ----------------------------------------


def config_from_argv(argv: list[str]):
    flag_values = flags.FlagValues()
    define_flags(flag_values)
    flag_values(["train.py", *argv])
    return config_from_flags(flag_values)


def test_float_list_flags_parse_as_floats_and_refuse_words():
    config = config_from_argv(["--agent=tabular_q", "--obs_low=-2.4,-0.5", "--grid_sizes=3,4"])
    assert config.agent.obs_low == [-2.4, -0.5] and config.agent.grid_sizes == [3, 4]
    with pytest.raises(UserError, match="--obs_high must be comma-separated numbers"):
        config_from_argv(["--agent=tabular_q", "--obs_high=1,high"])


@pytest.mark.parametrize(
    "argv, error, message",
    [
        (
            ["--grid_sizes=2,2", "--obs_low=-1,-1", "--obs_high=1,1"],
            UserError,
            "--grid_sizes, --obs_low and --obs_high have 2 values, but CartPole-v1's "
            "observations have 4 dimensions",
        ),
        (
            ["--grid_sizes=2,2"],  # the bounds come from CartPole's 4-dimensional defaults
            UserError,
            "--grid_sizes, --obs_low and --obs_high have 2, 4 and 4 values",
        ),
        (
            ["--env=Acrobot-v1"],
            UserError,
            "--agent=tabular_q has no default grid for Acrobot-v1 (defaults: CartPole-v0, "
            "CartPole-v1, MountainCar-v0); set --grid_sizes, --obs_low, --obs_high",
        ),
        (
            ["--env=Pendulum-v1"],
            UnsupportedSpaceError,
            "--agent=tabular_q takes discrete actions, but Pendulum-v1 has continuous actions",
        ),
        (
            ["--env=FrozenLake-v1", "--grid_sizes=4"],
            UserError,
            "--grid_sizes does not apply to a discrete observation",
        ),
        (["--env=Taxi-v4", "--obs_low=0", "--obs_high=1"], UserError, "do not apply"),
        (["--obs_low=1,1,1,1", "--obs_high=1,2,3,4"], UserError, "--obs_low must be < --obs_high"),
        (["--learning_rate=1.5"], UserError, "--learning_rate must be in (0, 1]"),
    ],
)
def test_bad_flags_are_one_line_errors_before_the_root_dir(tmp_path, argv, error, message):
    root = tmp_path / "run"
    config = config_from_argv(["--agent=tabular_q", f"--root_dir={root}", *argv])
    with pytest.raises(error) as info:
        train(config)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert not root.exists()
