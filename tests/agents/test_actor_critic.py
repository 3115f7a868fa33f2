"""DDPG, TD3 and SAC: policies and noise on Pendulum's specs, float64 Box actions, tiny runs."""

from __future__ import annotations

import tfa_suite  # noqa: F401  -- first: it selects Keras 2 before TensorFlow loads

# isort: split

import csv
import json
import math
import os

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.metrics import tf_metrics
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory

from tfa_suite.agents import AgentContext
from tfa_suite.catalog import build_agent, make_config
from tfa_suite.config import EVAL_SEED_OFFSET
from tfa_suite.envs.gym_adapter import make_tf_env
from tfa_suite.envs.loading import EnvSpec
from tfa_suite.policy.episodes import run_episodes
from tfa_suite.policy.saved import SavedPolicy
from tfa_suite.run.train import train

AGENTS = ["ddpg", "td3", "sac"]
SMALL = {"actor_layers": [16], "critic_layers": [16]}
FLOAT64_ENV = "tests.envs_for_tests:Float64ActionEnv"


def env_specs(env: str, kwargs: dict | None = None):
    tf_env = make_tf_env(EnvSpec(env, kwargs or {}), num_envs=1, seed=0)
    return tf_env.time_step_spec(), tf_env.action_spec()


@pytest.fixture(scope="module")
def pendulum_specs():
    return env_specs("Pendulum-v1")


def make_built(specs, agent: str, env: str = "Pendulum-v1", num_envs: int = 1, **overrides):
    config = make_config(agent=agent, env=env, **{**SMALL, **overrides})
    counter = tf.Variable(0, dtype=tf.int64, name="train_step")
    context = AgentContext(
        time_step_spec=specs[0],
        action_spec=specs[1],
        train_step=counter,
        env_steps=tf_metrics.EnvironmentSteps(),
        initial_collect_steps=0,
        num_envs=num_envs,
    )
    return build_agent(config, context), counter


def pendulum_observations(batch: int, seed: int = 0) -> tf.Tensor:
    """[cos, sin, speed] rows; a quarter are huge, to drive the actors to their bounds."""
    rng = np.random.default_rng(seed)
    angle = rng.uniform(-np.pi, np.pi, size=batch)
    speed = rng.uniform(-8.0, 8.0, size=batch)
    obs = np.stack([np.cos(angle), np.sin(angle), speed], axis=1).astype(np.float32)
    obs[: batch // 4] *= 1_000.0
    return tf.constant(obs)


def first_steps(observations: tf.Tensor) -> ts.TimeStep:
    return ts.restart(observations, batch_size=int(observations.shape[0]))


def pendulum_batch(batch: int, length: int, seed: int = 0) -> trajectory.Trajectory:
    """A hand-made [batch, length] batch of Pendulum-shaped mid-episode transitions."""
    rng = np.random.default_rng(seed)
    shape = [batch, length]
    return trajectory.Trajectory(
        step_type=tf.fill(shape, ts.StepType.MID),
        observation=tf.constant(rng.uniform(-1, 1, size=[batch, length, 3]).astype(np.float32)),
        action=tf.constant(rng.uniform(-2, 2, size=[batch, length, 1]).astype(np.float32)),
        policy_info=(),
        next_step_type=tf.fill(shape, ts.StepType.MID),
        reward=tf.constant(rng.uniform(-16, 0, size=shape).astype(np.float32)),
        discount=tf.ones(shape, tf.float32),
    )


def critic_variables(built) -> list[tf.Variable]:
    agent = built.agent  # DDPG has one critic; TD3 and SAC have two
    name = "_critic_network" if hasattr(agent, "_critic_network") else "_critic_network_1"
    return getattr(agent, name).trainable_variables


def noise_series(policy, greedy, steps: int, observation: tf.Tensor) -> np.ndarray:
    """Collect minus greedy action over `steps` successive calls on one observation.

    The calls run in one in-graph loop, one at a time (OU noise carries state between them),
    on mid-episode steps: a FIRST step restarts the OU process.
    """
    time_step = first_steps(observation)._replace(
        step_type=tf.fill([int(observation.shape[0])], ts.StepType.MID)
    )

    @tf.function(autograph=False)
    def collect() -> tf.Tensor:
        def body(i, out):
            return i + 1, out.write(i, policy.action(time_step).action)

        _, out = tf.while_loop(
            lambda i, _: i < steps,
            body,
            (tf.constant(0), tf.TensorArray(tf.float32, size=steps)),
            parallel_iterations=1,
        )
        return out.stack()

    base = greedy.action(time_step).action.numpy()
    return (collect().numpy() - base).reshape(steps)


def lag1_correlation(x: np.ndarray) -> float:
    return float(np.corrcoef(x[:-1], x[1:])[0, 1])


# --- policies on Pendulum's specs -----------------------------------------------------


@pytest.mark.parametrize("agent", AGENTS)
def test_collect_actions_are_float32_within_bounds(pendulum_specs, agent):
    tf.random.set_seed(0)
    built, _ = make_built(pendulum_specs, agent)
    step = first_steps(pendulum_observations(64))
    # Several calls, so the noise pushes saturated actions outwards at least once.
    actions = np.stack([built.collect_policy.action(step).action.numpy() for _ in range(10)])
    assert actions.shape == (10, 64, 1) and actions.dtype == np.float32
    assert np.all(actions >= -2.0) and np.all(actions <= 2.0)
    if agent != "sac":
        # The huge observations saturate the deterministic actors: the noise is clipped.
        assert np.max(np.abs(actions)) == 2.0


@pytest.mark.parametrize("agent", AGENTS)
def test_greedy_policy_is_deterministic_and_collect_policy_is_not(pendulum_specs, agent):
    tf.random.set_seed(1)
    built, _ = make_built(pendulum_specs, agent)
    # Observations in the normal range, so no action is pinned at a bound.
    step = first_steps(pendulum_observations(32)[8:])
    greedy = [built.greedy_policy.action(step).action.numpy() for _ in range(2)]
    np.testing.assert_array_equal(greedy[0], greedy[1])
    collect = [built.collect_policy.action(step).action.numpy() for _ in range(2)]
    assert np.max(np.abs(collect[0] - collect[1])) > 1e-3
    assert np.max(np.abs(collect[0] - greedy[0])) > 1e-3


@pytest.mark.parametrize("agent", AGENTS)
def test_initial_collect_policy_is_uniform_within_bounds(pendulum_specs, agent):
    built, _ = make_built(pendulum_specs, agent)
    assert built.initial_collect_policy is not built.collect_policy
    n = 4_000
    step = first_steps(pendulum_observations(n, seed=2)[n // 4 :])
    actions = built.initial_collect_policy.action(step).action.numpy()
    assert actions.shape == (3 * n // 4, 1) and actions.dtype == np.float32
    assert np.all(actions >= -2.0) and np.all(actions <= 2.0)
    assert abs(actions.mean()) < 0.1
    assert actions.min() < -1.9 and actions.max() > 1.9
    assert actions.std() == pytest.approx(4 / math.sqrt(12), rel=0.05)  # U(-2, 2)


@pytest.mark.parametrize("agent", AGENTS)
def test_train_step_on_pendulum_pairs_is_finite_and_counts(pendulum_specs, agent):
    built, counter = make_built(pendulum_specs, agent)
    assert built.hooks.train_sequence_length == 2
    assert built.agent.collect_data_spec.policy_info == ()
    before = [v.numpy().copy() for v in critic_variables(built)]
    loss = built.agent.train(pendulum_batch(8, built.hooks.train_sequence_length)).loss
    assert loss.shape == () and np.isfinite(loss.numpy())
    assert int(counter.numpy()) == 1
    built.agent.train(pendulum_batch(8, 2, seed=1))
    assert int(counter.numpy()) == 2
    after = critic_variables(built)
    assert any(not np.allclose(b, a.numpy()) for b, a in zip(before, after))


# --- exploration noise ----------------------------------------------------------------


def test_gaussian_noise_std_is_a_fraction_of_the_half_width(pendulum_specs):
    tf.random.set_seed(2)
    built, _ = make_built(pendulum_specs, "ddpg", exploration_noise_std=0.1)
    observation = tf.constant([[1.0, 0.0, 0.0]])
    # The greedy action is far (5 noise stds) from the clip at +-2, so the noise is unclipped.
    assert abs(float(built.greedy_policy.action(first_steps(observation)).action)) < 1.0
    noise = noise_series(built.collect_policy, built.greedy_policy, 1_000, observation)
    # 0.1 of Pendulum's half-width 2.
    assert noise.std() == pytest.approx(0.2, rel=0.1)
    assert abs(noise.mean()) < 0.03
    assert abs(lag1_correlation(noise)) < 0.15
    assert float(built.scalars["noise_std"]()) == pytest.approx(0.1)


def test_ou_noise_is_autocorrelated_across_calls(pendulum_specs):
    tf.random.set_seed(3)
    built, _ = make_built(pendulum_specs, "ddpg", exploration_noise="ou", ou_damping=0.15)
    observation = tf.constant([[1.0, 0.0, 0.0]])
    noise = noise_series(built.collect_policy, built.greedy_policy, 600, observation)
    assert noise.std() > 0.05
    # x_{t+1} = 0.85 x_t + N(0, sigma^2): a lag-1 correlation of about 0.85.
    assert lag1_correlation(noise) > 0.6


def test_ou_noise_restarts_when_an_episode_starts(pendulum_specs):
    built, _ = make_built(pendulum_specs, "ddpg", num_envs=2, exploration_noise="ou")
    state = built.collect_policy._ou_state
    state.assign(tf.fill([2, 1], 100.0))  # far from any value a fresh draw could take
    observation = tf.constant([[1.0, 0.0, 0.0]] * 2)
    # Env 0 starts a new episode, env 1 goes on: only env 0's process restarts at zero.
    mixed = ts.restart(observation, batch_size=2)._replace(
        step_type=tf.constant([ts.StepType.FIRST, ts.StepType.MID])
    )
    built.collect_policy.action(mixed)
    after = state.numpy()[:, 0]
    scale = 0.1 * 2.0  # the default noise std, of Pendulum's half-width 2
    assert abs(after[0]) < 6 * scale  # one fresh N(0, scale^2) draw
    assert after[1] == pytest.approx(0.85 * 100.0, abs=6 * scale)  # decayed, not reset


@pytest.mark.parametrize("noise", ["gaussian", "ou"])
def test_noise_is_independent_across_parallel_envs(pendulum_specs, noise):
    # TF-Agents' GaussianPolicy/OUNoisePolicy would broadcast one draw over the batch.
    built, _ = make_built(pendulum_specs, "ddpg", num_envs=256, exploration_noise=noise)
    step = first_steps(tf.tile(tf.constant([[1.0, 0.0, 0.0]]), [256, 1]))
    greedy = built.greedy_policy.action(step).action.numpy()
    diff = built.collect_policy.action(step).action.numpy() - greedy
    assert diff.std() > 0.05


@pytest.mark.parametrize(
    "env, noise, clip, unit",
    [("Pendulum-v1", 0.2, 0.5, 2.0), (FLOAT64_ENV, 0.3, 0.6, 0.1)],
)
def test_td3_target_smoothing_noise_is_scaled_by_the_half_width(env, noise, clip, unit):
    built, _ = make_built(
        env_specs(env), "td3", env=env, target_policy_noise=noise, target_policy_noise_clip=clip
    )
    assert built.agent._target_policy_noise == pytest.approx(noise * unit, rel=1e-6)
    assert built.agent._target_policy_noise_clip == pytest.approx(clip * unit, rel=1e-6)


# --- SAC's temperature ----------------------------------------------------------------


def test_sac_logs_alpha_from_initial_alpha_and_it_learns(pendulum_specs):
    built, _ = make_built(pendulum_specs, "sac", initial_alpha=0.5, alpha_learning_rate=0.01)
    assert set(built.scalars) == {"alpha"}
    assert float(built.scalars["alpha"]()) == pytest.approx(0.5, rel=1e-6)
    for seed in range(3):
        built.agent.train(pendulum_batch(16, 2, seed=seed))
    alpha = float(built.scalars["alpha"]())
    assert np.isfinite(alpha) and abs(alpha - 0.5) > 1e-3


@pytest.mark.parametrize("env, dims", [("Pendulum-v1", 1), (FLOAT64_ENV, 2)])
def test_sac_default_target_entropy_is_minus_the_action_dimensions(env, dims):
    built, _ = make_built(env_specs(env), "sac", env=env)
    assert float(built.agent._target_entropy) == -dims


def test_sac_explicit_target_entropy_is_kept(pendulum_specs):
    built, _ = make_built(pendulum_specs, "sac", target_entropy=-3.0)
    assert float(built.agent._target_entropy) == -3.0


# --- float64 Box actions --------------------------------------------------------------


def test_float64_box_actions_are_exposed_as_float32():
    _, action_spec = env_specs(FLOAT64_ENV)
    assert action_spec.dtype == tf.float32 and action_spec.shape == (2,)
    np.testing.assert_array_equal(action_spec.minimum, np.float32([-0.1, -0.1]))
    np.testing.assert_array_equal(action_spec.maximum, np.float32([0.1, 0.1]))


def test_sac_needs_the_float32_action_spec():
    time_step_spec, action_spec = env_specs(FLOAT64_ENV)
    float64_spec = tensor_spec.BoundedTensorSpec(
        (2,), tf.float64, minimum=-0.1, maximum=0.1, name="action"
    )
    with pytest.raises(ValueError, match="must match the sample_spec.dtype"):
        make_built((time_step_spec, float64_spec), "sac", env=FLOAT64_ENV)
    built, _ = make_built((time_step_spec, action_spec), "sac", env=FLOAT64_ENV)
    assert built.collect_policy.action_spec.dtype == tf.float32


def test_actions_reach_a_float64_env_as_float64_within_bounds():
    tf_env = make_tf_env(EnvSpec(FLOAT64_ENV), num_envs=1, seed=0)
    gym_env = tf_env.pyenv.envs[0].gym_env
    built, _ = make_built((tf_env.time_step_spec(), tf_env.action_spec()), "sac", env=FLOAT64_ENV)
    time_step = tf_env.reset()
    for _ in range(5):
        action = built.collect_policy.action(time_step).action
        assert action.dtype == tf.float32
        time_step = tf_env.step(action)
    # float32(0.1) is 0.10000000149 > 0.1: the adapter casts, then clips to the bounds.
    edge = tf.constant([[0.1, -0.1]], tf.float32)
    assert float(edge[0, 0]) > 0.1
    tf_env.step(edge)
    received = gym_env.actions_received
    assert len(received) == 6
    for action in received:
        assert action.dtype == np.float64 and action.shape == (2,)
        assert np.all(action >= -0.1) and np.all(action <= 0.1)
        assert gym_env.action_space.contains(action)
    np.testing.assert_array_equal(received[-1], [0.1, -0.1])


def test_evaluation_passes_float64_edge_actions_within_bounds():
    # The strict env raises on a float32 or out-of-bounds action, which fails the run.
    spec = EnvSpec(FLOAT64_ENV, {"strict": True, "max_steps": 20})
    stats = run_episodes(lambda obs: np.full((len(obs), 2), 0.1, np.float32), spec, 2, seed=0)
    np.testing.assert_allclose(stats.returns, [-0.4, -0.4], rtol=1e-12)
    assert list(stats.lengths) == [20, 20]


# --- tiny real runs -------------------------------------------------------------------


SCALAR = {"ddpg": "noise_std", "td3": "noise_std", "sac": "alpha"}


@pytest.mark.parametrize(
    # One agent in the fast tier: the export path is shared, and tests/run/test_every_agent.py
    # reloads every agent's export in-process.
    "agent",
    [
        pytest.param("ddpg", marks=pytest.mark.slow),
        pytest.param("td3", marks=pytest.mark.slow),
        "sac",
    ],
)
def test_tiny_run_exports_a_policy_that_evaluates_the_same_in_a_fresh_process(
    tmp_path, binaries, agent
):
    root = tmp_path / agent
    seed = 3
    config = make_config(
        agent=agent,
        env="Pendulum-v1",
        backend="graph",
        seed=seed,
        root_dir=str(root),
        num_env_steps=400,
        initial_collect_steps=100,
        batch_size=32,
        eval_interval=200,
        eval_episodes=2,
        video_episodes=0,
        metrics_interval=200,
        log_interval_seconds=0.01,
        **SMALL,
    )
    result = train(config)
    assert result.env_steps >= 400
    assert result.train_steps >= 300  # one per step after the initial collection
    assert (root / "policy" / "saved_model.pb").is_file()
    assert np.isfinite(result.final_eval_mean)

    with open(root / "metrics.csv", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert SCALAR[agent] in reader.fieldnames and "epsilon" not in reader.fieldnames
    values = [float(r[SCALAR[agent]]) for r in rows if r[SCALAR[agent]]]
    assert values and all(np.isfinite(values))
    if agent == "sac":
        assert abs(values[-1] - 1.0) > 1e-4  # initial_alpha 1, learned since
    else:
        assert values == [pytest.approx(0.1)] * len(values)

    policy = SavedPolicy(str(root / "policy"))
    assert policy.train_step == result.train_steps
    obs = np.asarray(pendulum_observations(16, seed=4))
    actions = policy(obs)
    assert actions.shape == (16, 1) and actions.dtype == np.float32
    assert np.all(actions >= -2.0) and np.all(actions <= 2.0)
    np.testing.assert_array_equal(policy(obs), actions)  # greedy: the same again

    scores = tmp_path / "eval.json"
    proc = binaries.run(
        "experiments/evaluate.py",
        f"--policy_dir={root / 'policy'}",
        "--episodes=2",
        f"--seed={seed + EVAL_SEED_OFFSET}",
        f"--json={scores}",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads(scores.read_text())
    assert record["policy_train_step"] == result.train_steps
    assert record["mean"] == pytest.approx(result.final_eval_mean, abs=1e-3)
    assert os.path.samefile(record["policy_dir"], root / "policy")


def test_same_seed_gives_identical_learning_curves(tmp_path):
    # Keras initializers without a seed draw one from Python's `random`, which train()
    # seeds: without that, two runs of one seed started from different weights.
    def losses(name: str) -> list[tuple[str, str, str]]:
        config = make_config(
            agent="td3",
            env="Pendulum-v1",
            root_dir=str(tmp_path / name),
            actor_layers=[16],
            critic_layers=[16],
            initial_collect_steps=100,
            batch_size=32,
            num_env_steps=400,
            eval_interval=0,
            metrics_interval=100,
            video_episodes=0,
        )
        train(config)
        with open(tmp_path / name / "metrics.csv", newline="") as f:
            return [(r["env_steps"], r["loss"], r["train_return"]) for r in csv.DictReader(f)]

    first, second = losses("a"), losses("b")
    assert len(first) >= 3
    assert first == second
