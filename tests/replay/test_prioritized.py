"""Prioritized replay: the sum tree, the sampling distribution, weights, updates, overwrite,
beta annealing, checkpoints, both storages, and the loop that uses it."""

import tfa_suite  # noqa: F401  isort: skip

import math

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.replay_buffers import tf_uniform_replay_buffer
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import trajectory

from tfa_suite.errors import UserError
from tfa_suite.replay.frame_store import FrameStoreReplay
from tfa_suite.replay.prioritized import PrioritizedReplay, SumTree
from tfa_suite.run.train import build, resolve_config, train

SPEC = (tf.TensorSpec([], tf.int64, "x"),)


def uniform_per(num_envs=1, max_length=8, steps=1, **kwargs) -> PrioritizedReplay:
    buffer = tf_uniform_replay_buffer.TFUniformReplayBuffer(
        SPEC, batch_size=num_envs, max_length=max_length
    )
    return PrioritizedReplay(buffer, sequence_length=steps, **kwargs)


def add(per: PrioritizedReplay, t: int, num_envs: int = 1) -> None:
    """Item t: env e holds the value 100 * t + e, so a sample names its id and env."""
    per.add_batch((tf.constant([100 * t + e for e in range(num_envs)], tf.int64),))


def chi_square_critical(df: int, p: float = 1e-3) -> float:
    """Upper-p critical value of chi-square(df), by the Wilson-Hilferty approximation."""
    z = {1e-3: 3.0902}[p]
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


# --- the sum tree -------------------------------------------------------------------------


def test_sum_tree_sums_and_finds_by_hand():
    tree = SumTree(5)  # not a power of two: 8 leaves, 3 unused
    tree.set(tf.constant([0, 1, 2, 3, 4]), tf.constant([1.0, 0.0, 2.0, 3.0, 4.0]))
    assert float(tree.total()) == 10.0
    # Cumulative edges: leaf 0 [0, 1), leaf 2 [1, 3), leaf 3 [3, 6), leaf 4 [6, 10).
    targets = tf.constant([0.0, 0.99, 1.0, 2.5, 3.0, 5.99, 6.0, 9.999])
    np.testing.assert_array_equal(tree.find(targets).numpy(), [0, 0, 2, 2, 3, 3, 4, 4])
    tree.set(tf.constant([3]), tf.constant([0.5]))
    assert float(tree.total()) == pytest.approx(7.5)
    np.testing.assert_allclose(tree.get(tf.constant([3, 4])).numpy(), [0.5, 4.0])


def test_sum_tree_never_lands_on_an_empty_leaf():
    """Even a target at the very top of the total (float rounding) finds a leaf with mass."""
    size = 1000
    rng = np.random.default_rng(0)
    values = rng.uniform(0, 1, size) * (rng.uniform(0, 1, size) < 0.3)
    tree = SumTree(size)
    tree.set(tf.range(size), tf.constant(values, tf.float32))
    total = float(tree.total())
    targets = tf.constant(np.concatenate([rng.uniform(0, total, 5000), [total, total * 1.01]]))
    leaves = tree.find(tf.cast(targets, tf.float32)).numpy()
    assert np.all(values[leaves] > 0)


# --- sampling, weights and updates ----------------------------------------------------------


def test_sampling_frequencies_match_the_priorities():
    """Chi-square over 64k draws from 8 windows with priorities (|error| + eps)^alpha."""
    per = uniform_per(max_length=8, alpha=0.5)
    for t in range(8):
        add(per, t)
    errors = np.array([1.0, 4.0, 9.0, 16.0, 0.25, 2.25, 25.0, 0.0])
    per.update_priorities(tf.range(8), tf.constant(errors, tf.float32))
    expected = np.sqrt(errors + 1e-6)
    expected /= expected.sum()

    counts = np.zeros(8)
    for _ in range(250):
        experience, info = per.get_next(256, 1)
        ids = experience[0].numpy()[:, 0] // 100  # windows are [B, T]
        np.testing.assert_array_equal(ids, info.leaves.numpy())  # leaf t holds item t
        counts += np.bincount(ids, minlength=8)
    n = counts.sum()
    statistic = float(np.sum((counts - n * expected) ** 2 / (n * expected)))
    assert statistic < chi_square_critical(df=7), (counts / n, expected)
    # And the test has power: the same counts are far from uniform sampling.
    uniform = np.full(8, 1 / 8)
    assert float(np.sum((counts - n * uniform) ** 2 / (n * uniform))) > 1000


def test_importance_weights_by_hand():
    per = uniform_per(max_length=4, alpha=1.0, beta=lambda: tf.constant(0.5))
    for t in range(4):
        add(per, t)
    per.update_priorities(tf.range(4), tf.constant([1.0, 2.0, 3.0, 4.0]))
    _, info = per.get_next(64, 1)
    priorities = np.array([1.0, 2.0, 3.0, 4.0]) + 1e-6
    probabilities = priorities[info.leaves.numpy()] / priorities.sum()
    np.testing.assert_allclose(info.probabilities.numpy(), probabilities, rtol=1e-5)
    # w_i = (P_i)^-beta / max_j (P_j)^-beta over the batch.
    raw = probabilities**-0.5
    np.testing.assert_allclose(info.weights.numpy(), raw / raw.max(), rtol=1e-5)
    # 64 stratified draws over 4 windows cover leaf 0, so the largest weight is leaf 0's.
    assert 0 in info.leaves.numpy() and info.weights.numpy().max() == pytest.approx(1.0)


def test_updates_with_duplicate_leaves_keep_the_larger_priority():
    per = uniform_per(max_length=8, alpha=0.5, epsilon=0.0)
    for t in range(8):
        add(per, t)
    per.update_priorities(tf.constant([3, 3, 5, 3]), tf.constant([4.0, 16.0, 1.0, 9.0]))
    np.testing.assert_allclose(per.priorities(tf.constant([3, 5, 0])).numpy(), [4.0, 1.0, 1.0])
    assert float(per.max_priority) == pytest.approx(4.0)
    assert float(per.tree.total()) == pytest.approx(4.0 + 1.0 + 6 * 1.0)


def test_new_windows_enter_at_the_largest_priority_so_far():
    per = uniform_per(max_length=8, alpha=1.0, epsilon=0.0)
    for t in range(3):
        add(per, t)
    per.update_priorities(tf.constant([0, 1]), tf.constant([7.0, 0.5]))
    add(per, 3)
    np.testing.assert_allclose(per.priorities(tf.range(4)).numpy(), [7.0, 0.5, 1.0, 7.0])


def test_overwritten_and_incomplete_windows_are_never_drawn():
    """max_length 4, windows of 2: after items 0..5, only starts 2, 3, 4 are whole."""
    per = uniform_per(num_envs=2, max_length=4, steps=2, alpha=1.0)
    for t in range(6):
        add(per, t, num_envs=2)
    leaf = lambda t, e: int(per.leaf(tf.constant(t), tf.constant(e)))  # noqa: E731
    live = {leaf(t, e) for t in (2, 3, 4) for e in (0, 1)}
    values = per.priorities(tf.range(8)).numpy()
    assert {i for i in range(8) if values[i] > 0} == live
    for _ in range(20):
        experience, info = per.get_next(32, 2)
        items = experience[0].numpy()
        starts, envs_ = items[:, 0] // 100, items[:, 0] % 100
        assert set(starts) <= {2, 3, 4}
        np.testing.assert_array_equal(items[:, 1], items[:, 0] + 100)  # consecutive items
        assert {leaf(s, e) for s, e in zip(starts, envs_)} <= live

    # A raised priority on a start that is then overwritten is dropped with it.
    per.update_priorities(tf.constant([leaf(2, 0)]), tf.constant([50.0]))
    add(per, 6, num_envs=2)  # overwrites item 2
    assert float(per.priorities(tf.constant([leaf(2, 0)]))) == 0.0
    assert float(per.priorities(tf.constant([leaf(5, 0)]))) == pytest.approx(50.0)  # max so far


def test_checkpoint_restores_data_and_priorities(tmp_path):
    per = uniform_per(max_length=8, alpha=1.0)
    for t in range(8):
        add(per, t)
    per.update_priorities(tf.constant([2, 6]), tf.constant([5.0, 9.0]))
    saved = per.priorities(tf.range(8)).numpy()
    path = tf.train.Checkpoint(replay=per).save(str(tmp_path / "ckpt"))

    fresh = uniform_per(max_length=8, alpha=1.0)
    tf.train.Checkpoint(replay=fresh).restore(path).assert_consumed()
    np.testing.assert_array_equal(fresh.priorities(tf.range(8)).numpy(), saved)
    assert float(fresh.max_priority) == pytest.approx(9.0 + 1e-6)
    experience, info = fresh.get_next(16, 1)
    np.testing.assert_array_equal(experience[0].numpy()[:, 0] // 100, info.leaves.numpy())


def test_frame_store_windows_are_the_real_stacks():
    """On FrameStoreReplay, a prioritized window is the same data the store's own reads give."""
    frame = tensor_spec.TensorSpec([2, 2, 4], tf.uint8)
    data_spec = trajectory.Trajectory(
        step_type=tf.TensorSpec([], tf.int32), observation=frame,
        action=tf.TensorSpec([], tf.int64), policy_info=(),
        next_step_type=tf.TensorSpec([], tf.int32), reward=tf.TensorSpec([], tf.float32),
        discount=tf.TensorSpec([], tf.float32),
    )  # fmt: skip
    store = FrameStoreReplay(data_spec, batch_size=2, max_length=6, stack=4)
    per = PrioritizedReplay(store, sequence_length=3)
    for t in range(9):
        newest = np.full([2, 2, 2], t, np.uint8) + np.array([0, 100], np.uint8)[:, None, None]
        stack = np.stack([np.maximum(newest - k, 0) for k in (3, 2, 1, 0)], axis=-1)
        per.add_batch(
            trajectory.Trajectory(
                step_type=tf.constant([0 if t == 0 else 1] * 2), observation=tf.constant(stack),
                action=tf.constant([t, t], tf.int64), policy_info=(),
                next_step_type=tf.constant([1, 1]), reward=tf.constant([float(t)] * 2),
                discount=tf.ones([2]),
            )
        )  # fmt: skip
    experience, info = per.get_next(16, 3)
    envs_ = info.leaves.numpy() // 6
    starts = experience.action.numpy()[:, 0]
    assert set(starts) <= {3, 4, 5, 6}  # items 3..8 stored; windows of 3 start at 3..6
    direct = store.read_windows(tf.constant(starts, tf.int64), tf.constant(envs_, tf.int64), 3)
    np.testing.assert_array_equal(experience.observation.numpy(), direct.observation.numpy())
    np.testing.assert_array_equal(experience.reward.numpy()[:, 0], starts.astype(np.float32))


# --- the loop -----------------------------------------------------------------------------


def prioritized_config(tiny_config, root, **fields):
    return tiny_config(root, agent="dqn", replay_sampler="prioritized", **fields)


def test_beta_anneals_from_its_start_to_one_over_the_run(tiny_config, tmp_path):
    config = resolve_config(prioritized_config(tiny_config, tmp_path / "r", num_env_steps=1000))
    parts = build(config)
    steps = parts.loop.env_steps.environment_steps
    for done, beta in ((0, 0.4), (500, 0.7), (1000, 1.0), (5000, 1.0)):
        steps.assign(done)
        assert float(parts.loop.core.priority_beta()) == pytest.approx(beta)


def test_prioritized_loop_trains_and_exports(tiny_config, tmp_path):
    """A whole run; the graph-purity check of this loop is in test_graph_loop.py."""
    result = train(prioritized_config(tiny_config, tmp_path / "run", eval_interval=200))
    assert result.train_steps > 0 and np.isfinite(result.final_eval_mean)
    assert (tmp_path / "run" / "policy" / "saved_model.pb").is_file()


def test_c51_trains_on_prioritized_replay_with_its_cross_entropy(tiny_config, tmp_path):
    result = train(tiny_config(tmp_path / "c51", agent="c51", replay_sampler="prioritized"))
    assert result.train_steps > 0


def test_agents_without_per_sample_errors_are_refused(tiny_config, tmp_path):
    with pytest.raises(UserError, match="needs per-sample errors"):
        train(tiny_config(tmp_path / "ddpg", agent="ddpg", replay_sampler="prioritized"))
    assert not (tmp_path / "ddpg").exists()


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("replay_sampler", "rank", "--replay_sampler must be uniform or prioritized"),
        ("priority_alpha", 1.5, "--priority_alpha must be in"),
        ("priority_beta_start", -0.1, "--priority_beta_start must be in"),
        ("priority_epsilon", 0.0, "--priority_epsilon must be > 0"),
    ],
)
def test_bad_priority_flags_are_refused(tiny_config, tmp_path, field, value, message):
    with pytest.raises(UserError, match=message):
        resolve_config(tiny_config(tmp_path, agent="dqn", **{field: value}))
