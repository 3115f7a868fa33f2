"""The rollout loop and its agents: advantage and return math, minibatching, runs, errors."""

import tfa_suite  # noqa: F401  isort: skip

import json
import math
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory as trajectory_lib

from tfa_suite.agents.policy_gradient.advantages import boundary_mask, gae
from tfa_suite.agents.policy_gradient.reinforce import points_as_returns_ends
from tfa_suite.config import EVAL_SEED_OFFSET
from tfa_suite.errors import UserError
from tfa_suite.flags import config_from_flagfile
from tfa_suite.loops.rollout import RolloutLoop, minibatch_indices
from tfa_suite.run.train import build, resolve_config, train

FIRST, MID, LAST = ts.StepType.FIRST, ts.StepType.MID, ts.StepType.LAST


def rollout(step_types, next_step_types, rewards, discounts, observation_dims=1, actions=None):
    """A [1, T] trajectory of hand-chosen step types, rewards and discounts."""
    t = len(rewards)
    return trajectory_lib.Trajectory(
        step_type=tf.constant([step_types], tf.int32),
        observation=tf.zeros([1, t, observation_dims], tf.float32),
        action=tf.constant([actions if actions is not None else [0] * t], tf.int64),
        policy_info=(),
        next_step_type=tf.constant([next_step_types], tf.int32),
        reward=tf.constant([rewards], tf.float32),
        discount=tf.constant([discounts], tf.float32),
    )


# --- GAE ------------------------------------------------------------------------------------

# One row: an episode that terminates (t1), its boundary entry (t2), an episode cut by a
# time limit (t4, discount 1), its boundary (t5).
HAND = rollout(
    step_types=[MID, MID, LAST, FIRST, MID, LAST],
    next_step_types=[MID, LAST, FIRST, MID, LAST, FIRST],
    rewards=[1.0, 1.0, 0.0, 2.0, 3.0, 0.0],
    discounts=[1.0, 0.0, 1.0, 1.0, 1.0, 1.0],
)
# V(o_t); o_2 and o_5 are the final observations of the two episodes.
HAND_VALUES = [[0.5, 0.4, 9.0, 0.3, 0.2, 7.0]]


def test_gae_matches_a_hand_computation():
    gamma, lam = 0.9, 0.8
    advantages, returns = gae(HAND, tf.constant(HAND_VALUES), tf.constant([5.0]), gamma, lam)
    # t4: truncated, so V(o_5) = 7 is bootstrapped, but the recursion stops there.
    a4 = 3.0 + 0.9 * 7.0 - 0.2
    a3 = (2.0 + 0.9 * 0.2 - 0.3) + gamma * lam * a4
    # t1: terminated: nothing bootstrapped from the boundary's V(o_2) = 9.
    a1 = 1.0 - 0.4
    a0 = (1.0 + 0.9 * 0.4 - 0.5) + gamma * lam * a1
    expected = [a0, a1, 0.0, a3, a4, 0.0]
    np.testing.assert_allclose(advantages.numpy()[0], expected, rtol=1e-6)
    values = np.array(HAND_VALUES[0])
    mask = np.array([1, 1, 0, 1, 1, 0])
    np.testing.assert_allclose(returns.numpy()[0], (np.array(expected) + values) * mask, rtol=1e-6)
    np.testing.assert_array_equal(boundary_mask(HAND).numpy()[0], mask)


def reference_gae(step, next_step, rewards, discounts, values, bootstrap, gamma, lam):
    """A plain per-entry loop over one row, written from the definitions."""
    t_max = len(rewards)
    advantages = np.zeros(t_max)
    following = 0.0
    for t in reversed(range(t_max)):
        if step[t] == LAST:  # boundary: the env ignored this action
            advantages[t], following = 0.0, 0.0
            continue
        next_value = values[t + 1] if t + 1 < t_max else bootstrap
        delta = rewards[t] + gamma * discounts[t] * next_value - values[t]
        if next_step[t] == LAST:
            following = 0.0
        advantages[t] = delta + gamma * lam * discounts[t] * following
        following = advantages[t]
    return advantages


@pytest.mark.parametrize("gamma, lam", [(0.99, 0.95), (0.9, 0.0), (1.0, 1.0)])
def test_gae_matches_a_per_entry_loop_on_random_rollouts(gamma, lam):
    rng = np.random.default_rng(7)
    rows, t_max = 5, 40
    step = np.full((rows, t_max), MID)
    next_step = np.full((rows, t_max), MID)
    discounts = np.ones((rows, t_max), np.float32)
    for r in range(rows):
        step[r, 0] = FIRST
        for t in range(t_max):
            if t > 0 and next_step[r, t - 1] == LAST:
                step[r, t], next_step[r, t] = LAST, FIRST  # the boundary entry
            elif t > 0 and next_step[r, t - 1] == FIRST:
                step[r, t] = FIRST
            elif rng.random() < 0.1:
                next_step[r, t] = LAST
                discounts[r, t] = 0.0 if rng.random() < 0.5 else 1.0  # terminal or cut
    rewards = rng.normal(size=(rows, t_max)).astype(np.float32)
    values = rng.normal(size=(rows, t_max)).astype(np.float32)
    bootstrap = rng.normal(size=rows).astype(np.float32)
    traj = trajectory_lib.Trajectory(
        step_type=tf.constant(step, tf.int32),
        observation=tf.zeros([rows, t_max, 1]),
        action=tf.zeros([rows, t_max], tf.int64),
        policy_info=(),
        next_step_type=tf.constant(next_step, tf.int32),
        reward=tf.constant(rewards),
        discount=tf.constant(discounts),
    )
    advantages, _ = gae(traj, tf.constant(values), tf.constant(bootstrap), gamma, lam)
    assert (next_step == LAST).sum() >= 10 and (discounts == 0).sum() >= 3
    for r in range(rows):
        expected = reference_gae(
            step[r], next_step[r], rewards[r], discounts[r], values[r], bootstrap[r], gamma, lam
        )
        np.testing.assert_allclose(advantages.numpy()[r], expected, rtol=1e-5, atol=1e-5)


# --- REINFORCE's returns ----------------------------------------------------------------------


def uniform_reinforce(tmp_path, tiny_config, **fields):
    """A REINFORCE agent (no baseline, no normalization) whose policy is exactly uniform,
    so log pi(a|o) = -log 2 for every action and its loss exposes the returns it used."""
    fields = {"use_value_baseline": False, "normalize_returns": False, **fields}
    config = resolve_config(tiny_config(str(tmp_path / "run"), agent="reinforce", **fields))
    parts = build(config)
    for variable in parts.agent._actor_network.trainable_variables:  # noqa: SLF001
        variable.assign(tf.zeros_like(variable))
    return parts


def reinforce_loss(parts, experience):
    if parts.built.hooks.prepare is not None:
        experience = parts.built.hooks.prepare(experience, None)
    return float(parts.agent.train(experience).loss)


# CartPole-sized observations. A row with two scored points (t1, t4) inside one episode
# that ends at t5, then a boundary and a new episode's first steps, cut by the rollout.
SCORED = dict(
    step_types=[FIRST, MID, MID, MID, MID, MID, LAST, FIRST, MID],
    next_step_types=[MID, MID, MID, MID, MID, LAST, FIRST, MID, MID],
    rewards=[0.0, 1.0, 0.0, 0.0, -1.0, 0.5, 0.0, 0.0, 2.0],
    discounts=[1.0] * 9,
    observation_dims=4,
)


def test_reinforce_returns_restart_at_episode_ends_only_by_default(tmp_path, tiny_config):
    parts = uniform_reinforce(tmp_path, tiny_config, gamma=0.5)
    g = 0.5
    # One return over t0..t5; t6 is the boundary; t7, t8 have no end: left out.
    r = SCORED["rewards"]
    returns = [sum(r[k] * g ** (k - t) for k in range(t, 6)) for t in range(6)]
    expected = math.log(2.0) * sum(returns) / 1  # one complete episode
    assert reinforce_loss(parts, rollout(**SCORED)) == pytest.approx(expected, rel=1e-5)


def test_reinforce_returns_restart_at_every_scored_point(tmp_path, tiny_config):
    parts = uniform_reinforce(tmp_path, tiny_config, gamma=0.5, reset_return_on_reward=True)
    g, r = 0.5, SCORED["rewards"]
    # Returns end after t1 (a point), t4 (a point), t5 (the episode's end, rewarded) and
    # t8 (a point in the next episode); t6 is the boundary entry, left out. Four complete
    # returns in all, and t7's is complete too, since t8 ends it.
    segments = [(0, 2), (2, 5), (5, 6), (7, 9)]
    returns = [
        sum(r[k] * g ** (k - t) for k in range(t, end))
        for s, end in segments
        for t in range(s, end)
    ]
    expected = math.log(2.0) * sum(returns) / 4
    assert reinforce_loss(parts, rollout(**SCORED)) == pytest.approx(expected, rel=1e-5)


def test_reinforce_standardizes_over_the_entries_it_trains_on(tmp_path, tiny_config):
    # A 4-step episode, its boundary, then 10 steps of an episode the rollout cuts off.
    # Standardized over the 4 trained entries, the advantages sum to 0, and under a
    # uniform policy so does the loss; over the whole batch (TF-Agents) it would not.
    parts = uniform_reinforce(tmp_path, tiny_config, normalize_returns=True)
    steps = [FIRST, MID, MID, MID, LAST, FIRST] + [MID] * 10
    nexts = [MID, MID, MID, LAST, FIRST] + [MID] * 11
    batch = rollout(steps, nexts, [1.0] * 16, [1.0] * 16, observation_dims=4)
    assert reinforce_loss(parts, batch) == pytest.approx(0.0, abs=1e-5)


def test_ppo_observation_normalizer_moves_only_after_a_rollouts_updates(tmp_path, tiny_config):
    config = resolve_config(
        tiny_config(str(tmp_path / "run"), agent="ppo", normalize_observations=True)
    )
    parts = build(config)
    parts.loop.run(2)  # the normalizer has taken in two rollouts
    collected, time_step = parts.loop._collect()  # noqa: SLF001
    policy = parts.built.collect_policy
    n, t = collected.step_type.shape

    def logits_now():
        flat = tf.nest.map_structure(lambda x: tf.reshape(x, [n * t, *x.shape[2:]]), collected)
        step = ts.TimeStep(flat.step_type, flat.reward, flat.discount, flat.observation)
        return policy.distribution(step).info["dist_params"]["logits"].numpy()

    stored = tf.reshape(collected.policy_info["dist_params"]["logits"], [n * t, -1]).numpy()
    parts.built.hooks.prepare(collected, time_step)  # advantages, before the updates
    # What the first minibatch's update sees: the probabilities the actions were drawn
    # with (importance ratio 1).
    np.testing.assert_allclose(logits_now(), stored, rtol=1e-5, atol=1e-6)
    parts.built.hooks.after_updates(collected)
    assert np.abs(logits_now() - stored).max() > 1e-4  # the normalizer moved, afterwards


def test_points_mark_only_rewarded_entries_and_keep_the_boundaries():
    marked = points_as_returns_ends(rollout(**SCORED))
    np.testing.assert_array_equal(
        marked.next_step_type.numpy()[0], [MID, LAST, MID, MID, LAST, LAST, FIRST, MID, LAST]
    )
    np.testing.assert_array_equal(marked.step_type.numpy()[0], SCORED["step_types"])


def test_reinforce_skips_a_rollout_without_a_complete_return(tmp_path, tiny_config):
    parts = uniform_reinforce(tmp_path, tiny_config)
    before = int(parts.agent.train_step_counter.numpy())
    no_end = rollout([FIRST, MID, MID], [MID, MID, MID], [1.0, 1.0, 1.0], [1.0] * 3, 4)
    assert reinforce_loss(parts, no_end) == 0.0
    assert int(parts.agent.train_step_counter.numpy()) == before  # no update


# --- minibatches and the step counter ----------------------------------------------------------


def test_minibatch_indices_partition_the_rollout_afresh_each_epoch():
    tf.random.set_seed(3)
    first, second = minibatch_indices(48, 8).numpy(), minibatch_indices(48, 8).numpy()
    for order in (first, second):
        assert order.shape == (6, 8)
        assert sorted(order.ravel()) == list(range(48))  # each entry once
    assert not np.array_equal(first, second)


def test_ppo_counts_one_train_step_per_minibatch(tmp_path, tiny_config):
    # 2 envs x 8 steps = 16 entries, minibatches of 4, 3 epochs: 12 gradient steps per rollout
    # (TF-Agents' own PPO counts one per epoch, and trains each on the whole batch).
    config = resolve_config(
        tiny_config(str(tmp_path / "run"), agent="ppo", minibatch_size=4, num_epochs=3)
    )
    parts = build(config)
    assert isinstance(parts.loop, RolloutLoop)
    loss = parts.loop.run(5)
    assert math.isfinite(loss)
    assert int(parts.agent.train_step_counter.numpy()) == 5 * 12
    # Each rollout is exactly 8 batched steps: at most 2 x 8 counted (boundaries are not).
    assert 5 * 16 - 10 <= int(parts.loop.env_steps.result()) <= 5 * 16


@pytest.mark.parametrize("agent", ["reinforce", "a2c"])
def test_one_update_agents_count_one_train_step_per_rollout(tmp_path, tiny_config, agent):
    config = resolve_config(tiny_config(str(tmp_path / "run"), agent=agent, rollout_steps=64))
    parts = build(config)
    parts.loop.run(3)
    # 64 steps of 2 CartPole envs always finish an episode, so REINFORCE updates each time.
    assert int(parts.agent.train_step_counter.numpy()) == 3


# --- runs ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ppo_pendulum_run(tmp_path_factory, tiny_config):
    root = str(tmp_path_factory.mktemp("ppo") / "run")
    config = tiny_config(root, agent="ppo", env="Pendulum-v1", eval_interval=200, video_episodes=1)
    return root, config, train(config)


def test_ppo_run_writes_every_output(ppo_pendulum_run):
    root, _, result = ppo_pendulum_run
    for name in ("metrics.csv", "config.json", "result.json", "learning_curve.png", "video.mp4"):
        assert os.path.getsize(os.path.join(root, name)) > 0, name
    assert os.path.isdir(os.path.join(root, "policy")) and os.listdir(
        os.path.join(root, "checkpoints")
    )
    assert result.env_steps >= 400 and result.train_steps > 0
    with open(os.path.join(root, "config.json")) as f:
        assert json.load(f)["loop"]["rollout_steps"] == 8


def test_ppo_greedy_continuous_actions_stay_within_the_bounds(ppo_pendulum_run, tiny_config):
    _, config, _ = ppo_pendulum_run
    parts = build(resolve_config(config))
    # Push the mean far outside [-2, 2]: the Gaussian's mean layer's bias, huge.
    net = parts.agent.actor_net
    for variable in net.trainable_variables:
        variable.assign(tf.fill(variable.shape, 50.0))
    observations = tf.random.normal([64, 3])
    step = ts.restart(observations, batch_size=64)
    greedy = parts.built.greedy_policy.action(step).action.numpy()
    collect = parts.built.collect_policy.action(step).action.numpy()
    assert np.abs(collect).max() > 2.0  # TF-Agents' PPO samples are unclipped ...
    assert np.abs(greedy).max() <= 2.0 and np.abs(greedy).max() == pytest.approx(
        2.0
    )  # ... the mode is


@pytest.mark.parametrize("squash", [True, False])
def test_gaussian_head_starts_at_the_chosen_std_and_squashes_only_if_asked(
    ppo_pendulum_run, tiny_config, squash
):
    _, config, _ = ppo_pendulum_run
    changed = config.replace(init_action_std=1.3, squash_action_mean=squash)
    parts = build(resolve_config(changed))
    # Positive observations, so that with every weight at 50 each hidden unit saturates at +1.
    step = ts.restart(tf.abs(tf.random.normal([16, 3])) + 0.1, batch_size=16)
    net = parts.agent.actor_net
    distribution, _ = net(step.observation, step_type=step.step_type, network_state=())
    np.testing.assert_allclose(distribution.stddev().numpy(), 1.3, rtol=1e-5)
    for variable in net.trainable_variables:  # the mean's pre-activation, far above 2
        variable.assign(tf.fill(variable.shape, 50.0))
    distribution, _ = net(step.observation, step_type=step.step_type, network_state=())
    mean = distribution.mean().numpy()
    if squash:  # tanh into [-2, 2]
        assert np.abs(mean).max() <= 2.0
    else:  # linear: the mean leaves the bounds, and only the greedy action is clipped
        assert mean.min() > 100.0
    assert np.abs(parts.built.greedy_policy.action(step).action.numpy()).max() <= 2.0


def test_ppo_run_resumes_and_extends(ppo_pendulum_run, tmp_path, tiny_config):
    root, config, first = ppo_pendulum_run
    copy = tmp_path / "copy"  # the shared run stays as it finished
    shutil.copytree(root, copy)
    resumed = train(config.replace(root_dir=str(copy), num_env_steps=600))
    assert resumed.resumed_from_env_steps == first.env_steps
    assert resumed.env_steps >= 600 and resumed.train_steps > first.train_steps


def test_evaluate_replays_the_ppo_run_in_a_fresh_process(ppo_pendulum_run, tmp_path, binaries):
    root, config, result = ppo_pendulum_run
    out = tmp_path / "eval.json"
    done = binaries.run(
        "experiments/evaluate.py",
        f"--policy_dir={root}/policy",
        "--episodes=2",
        f"--seed={EVAL_SEED_OFFSET + config.run.seed}",
        f"--json={out}",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # The run's final evaluation played the same seeds with the same exported policy.
    with open(out) as f:
        assert json.load(f)["mean"] == pytest.approx(result.final_eval_mean, abs=0.05)


@pytest.mark.parametrize(
    # PPO's run stands for the rollout loop in the fast tier; the others are slow.
    "agent",
    [
        pytest.param("reinforce", marks=pytest.mark.slow),
        pytest.param("a2c", marks=pytest.mark.slow),
        "ppo",
    ],
)
def test_same_seed_gives_the_same_run(tmp_path, tiny_config, agent):
    a = train(tiny_config(str(tmp_path / "a"), agent=agent, eval_interval=200))
    b = train(tiny_config(str(tmp_path / "b"), agent=agent, eval_interval=200))
    assert a.evaluations == b.evaluations and a.train_steps == b.train_steps


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "agent, fields, message",
    [
        ("a2c", dict(num_epochs=4), "--agent=a2c makes one update per rollout"),
        ("reinforce", dict(minibatch_size=8), "--agent=reinforce makes one update per rollout"),
        ("ppo", dict(minibatch_size=5), "--minibatch_size (5) must divide"),
        ("ppo", dict(minibatch_size=64), "--minibatch_size (64) must be <="),
        ("ppo", dict(learning_rate_decay="cosine"), "--learning_rate_decay must be"),
        ("ppo", dict(activation="gelu"), "--activation must be tanh or relu"),
        ("ppo", dict(clip_ratio=1.5), "--clip_ratio must be in (0, 1)"),
        ("ppo", dict(env="ALE/Pong-v5"), "flat vector observation"),
        ("ppo", dict(init_action_std=1.0), "apply only to continuous actions"),
        ("reinforce", dict(squash_action_mean=False), "apply only to continuous actions"),
        ("ppo", dict(env="Pendulum-v1", init_action_std=0.0), "--init_action_std must be"),
    ],
)
def test_bad_settings_are_refused_in_one_line(tmp_path, tiny_config, agent, fields, message):
    root = tmp_path / "run"
    with pytest.raises(UserError) as error:
        config = resolve_config(tiny_config(str(root), agent=agent, **fields))
        build(config)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert not root.exists()


def test_flags_of_other_agents_are_refused(binaries):
    done = binaries.run("experiments/train.py", "--agent=a2c", "--clip_ratio=0.1")
    assert done.returncode != 0
    assert "--clip_ratio does not apply to --agent=a2c" in done.stderr
    assert "Traceback" not in done.stderr


# --- learning ---------------------------------------------------------------------------------


CONFIGS = os.path.join(os.path.dirname(__file__), "..", "..", "experiments", "configs")


def solve(name: str, tmp_path, seed: int = 0):
    config = config_from_flagfile(os.path.join(CONFIGS, name))
    config = config.replace(root_dir=str(tmp_path / "run"), seed=seed, video_episodes=0)
    return train(config)


@pytest.mark.slow
def test_ppo_solves_cartpole(tmp_path):
    result = solve("cartpole_ppo.cfg", tmp_path)
    assert result.solved and result.final_eval_mean >= 475


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cartpole_a2c.cfg", "cartpole_reinforce.cfg"])
def test_a2c_and_reinforce_solve_cartpole(tmp_path, name):
    result = solve(name, tmp_path)
    assert result.solved and result.final_eval_mean >= 475


@pytest.mark.slow
def test_ppo_reaches_minus_200_on_pendulum(tmp_path):
    result = solve("pendulum_ppo.cfg", tmp_path)
    assert result.solved and result.final_eval_mean >= -200
