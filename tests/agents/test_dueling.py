"""The dueling Q-network (--dueling): its aggregation, its target copy, both torsos, and
DQN / double DQN runs that really train and export it."""

from __future__ import annotations

import tfa_suite  # noqa: F401  -- first: it selects Keras 2 before TensorFlow loads

# isort: split

import os
import re

import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from tf_agents.agents.dqn import dqn_agent
from tf_agents.metrics import tf_metrics
from tf_agents.networks import q_network
from tf_agents.specs import array_spec, tensor_spec
from tf_agents.trajectories import time_step as ts
from tf_agents.utils import common

from tests.run.test_learning import solve_cartpole
from tfa_suite.agents import AgentContext
from tfa_suite.agents.dueling import DuelingQNetwork, dueling_q_values
from tfa_suite.agents.q_learning import network_kwargs
from tfa_suite.catalog import build_agent, make_config
from tfa_suite.envs.gym_adapter import make_tf_env
from tfa_suite.envs.loading import EnvSpec
from tfa_suite.errors import UserError
from tfa_suite.flags import config_from_flags, define_flags
from tfa_suite.policy.saved import SavedPolicy
from tfa_suite.run.run_dir import open_run_dir
from tfa_suite.run.train import build, resolve_config, train


def actions(n: int) -> tensor_spec.BoundedTensorSpec:
    return tensor_spec.BoundedTensorSpec((), tf.int64, 0, n - 1)


def variable(net: DuelingQNetwork, pattern: str) -> tf.Variable:
    [match] = [v for v in net.variables if re.search(pattern, v.name)]
    return match


def context_for(time_step_spec, action_spec) -> AgentContext:
    return AgentContext(
        time_step_spec=time_step_spec,
        action_spec=action_spec,
        train_step=tf.Variable(0, dtype=tf.int64, name="train_step"),
        env_steps=tf_metrics.EnvironmentSteps(),
        initial_collect_steps=0,
    )


@pytest.fixture(scope="module")
def cartpole_specs():
    tf_env = make_tf_env(EnvSpec("CartPole-v1"), num_envs=1, seed=0)
    return tf_env.time_step_spec(), tf_env.action_spec()


# --- the aggregation ------------------------------------------------------------------


@pytest.fixture
def hand_net() -> DuelingQNetwork:
    """3 inputs, an identity torso layer (relu passes the non-negative inputs as they are)
    and heads set by hand: V = x . [1, 0, 2] + 0.5, A = x @ W + [1, 0, 0]."""
    net = DuelingQNetwork(tf.TensorSpec([3], tf.float32), actions(3), fc_layer_params=(3,))
    net.create_variables()
    variable(net, r"EncodingNetwork/dense[_0-9]*/kernel").assign(np.eye(3))
    variable(net, r"EncodingNetwork/dense[_0-9]*/bias").assign(np.zeros(3))
    variable(net, r"/value/kernel").assign([[1.0], [0.0], [2.0]])
    variable(net, r"/value/bias").assign([0.5])
    variable(net, r"/advantage/kernel").assign([[2.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    variable(net, r"/advantage/bias").assign([1.0, 0.0, 0.0])
    return net


HAND_OBS = np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]], np.float32)
# x = [1, 2, 3]: V = 1 + 6 + 0.5 = 7.5, A = [5, 2, 1] + [1, 0, 0] = [6, 2, 1], mean 3
# x = [1, 1, 1]: V = 3.5, A = [3, 1, 1] + [1, 0, 0] = [4, 1, 1], mean 2
HAND_V = np.array([7.5, 3.5])
HAND_Q = np.array([[10.5, 6.5, 5.5], [5.5, 2.5, 2.5]])


def test_network_gives_v_plus_a_minus_mean_a_by_hand(hand_net):
    q, state = hand_net(HAND_OBS)
    assert state == ()
    np.testing.assert_allclose(q.numpy(), HAND_Q, rtol=0, atol=1e-6)
    # mean_a Q = V: the value head is what the mean over actions recovers.
    np.testing.assert_allclose(q.numpy().mean(axis=1), HAND_V, rtol=0, atol=1e-6)


def test_a_constant_added_to_every_advantage_leaves_q_unchanged(hand_net):
    before = hand_net(HAND_OBS)[0].numpy()
    variable(hand_net, r"/advantage/bias").assign_add([7.0, 7.0, 7.0])
    np.testing.assert_allclose(hand_net(HAND_OBS)[0].numpy(), before, rtol=0, atol=1e-5)
    # Not any change leaves Q alone: a bias on one action moves that action only.
    variable(hand_net, r"/advantage/bias").assign_add([3.0, 0.0, 0.0])
    np.testing.assert_allclose(
        hand_net(HAND_OBS)[0].numpy(), before + [2.0, -1.0, -1.0], rtol=0, atol=1e-5
    )


def test_aggregation_keeps_the_mean_and_ignores_a_shift_for_any_values():
    rng = np.random.default_rng(0)
    value = rng.normal(size=(32, 1)).astype(np.float32)
    advantage = rng.normal(size=(32, 6)).astype(np.float32)
    q = dueling_q_values(tf.constant(value), tf.constant(advantage)).numpy()
    np.testing.assert_allclose(q.mean(axis=1, keepdims=True), value, atol=1e-6)
    np.testing.assert_allclose(
        q - value, advantage - advantage.mean(axis=1, keepdims=True), atol=1e-6
    )
    shift = rng.normal(size=(32, 1)).astype(np.float32)  # one constant per state
    shifted = dueling_q_values(tf.constant(value), tf.constant(advantage + shift)).numpy()
    np.testing.assert_allclose(shifted, q, atol=1e-5)


# --- the target copy ------------------------------------------------------------------


def test_copy_builds_a_target_with_its_own_variables(cartpole_specs):
    observation_spec = cartpole_specs[0].observation
    config = make_config(fc_layers=[16, 8], dueling=True)
    net = DuelingQNetwork(
        observation_spec, cartpole_specs[1], **network_kwargs(config.agent, observation_spec)
    )
    target = net.copy(name="target")
    assert isinstance(target, DuelingQNetwork)
    assert target.create_variables() == net.create_variables()
    assert len(target.variables) == len(net.variables) == 8  # 2 torso layers + 2 heads
    assert not {id(v) for v in target.variables} & {id(v) for v in net.variables}
    assert all(v.name.startswith("target/") for v in target.variables)
    observations = tf.constant(np.random.default_rng(1).normal(size=(64, 4)), tf.float32)
    assert not np.allclose(target(observations)[0], net(observations)[0])  # fresh weights
    common.soft_variables_update(net.variables, target.variables, tau=1.0)
    np.testing.assert_array_equal(target(observations)[0].numpy(), net(observations)[0].numpy())


@pytest.mark.parametrize(
    "double_dqn, agent_cls", [(False, dqn_agent.DqnAgent), (True, dqn_agent.DdqnAgent)]
)
def test_agent_builds_a_dueling_q_network_and_target(cartpole_specs, double_dqn, agent_cls):
    config = make_config(fc_layers=[16], dueling=True, double_dqn=double_dqn)
    agent = build_agent(config, context_for(*cartpole_specs)).agent
    assert type(agent).__mro__[2] is agent_cls  # under tfa_suite.agents.nstep's mask
    assert isinstance(agent._q_network, DuelingQNetwork)
    assert isinstance(agent._target_q_network, DuelingQNetwork)
    assert agent._target_q_network is not agent._q_network
    # initialize() copied the online weights into the target.
    observations = tf.constant(np.random.default_rng(2).normal(size=(16, 4)), tf.float32)
    np.testing.assert_array_equal(
        agent._target_q_network(observations)[0].numpy(), agent._q_network(observations)[0].numpy()
    )


def test_without_the_flag_dqn_keeps_the_plain_q_network(cartpole_specs):
    agent = build_agent(make_config(fc_layers=[16]), context_for(*cartpole_specs)).agent
    assert type(agent._q_network) is q_network.QNetwork


# --- the two torsos -------------------------------------------------------------------


def test_nature_cnn_torso_on_uint8_frames():
    # As AtariEnv's spec: full-shape bounds, since a scalar uint8 maximum overflows when
    # TF-Agents samples the spec (255 + 1 == 0).
    shape = (84, 84, 4)
    observation_spec = tensor_spec.from_spec(
        array_spec.BoundedArraySpec(
            shape, np.uint8, np.zeros(shape, np.uint8), np.full(shape, 255, np.uint8)
        )
    )
    time_step_spec = ts.time_step_spec(observation_spec)
    config = make_config(conv_layers="nature", fc_layers=[512], dueling=True)
    agent = build_agent(config, context_for(time_step_spec, actions(6))).agent
    net = agent._q_network
    assert isinstance(net, DuelingQNetwork)
    kernels = sorted(
        (v.shape.as_list() for v in net.variables if v.name.endswith("kernel:0")), key=len
    )
    # Mnih et al. 2015: 32 8x8/4, 64 4x4/2, 64 3x3/1 -> 7x7x64 = 3136 -> 512, then V and A.
    assert kernels == [
        [3136, 512],
        [512, 1],
        [512, 6],
        [8, 8, 4, 32],
        [4, 4, 32, 64],
        [3, 3, 64, 64],
    ]
    frames = np.random.default_rng(3).integers(0, 256, size=(2, 84, 84, 4), dtype=np.uint8)
    q, _ = net(tf.constant(frames))
    assert q.shape == (2, 6) and q.dtype == tf.float32
    assert np.all(np.isfinite(q.numpy()))
    np.testing.assert_allclose(
        q.numpy().mean(axis=1),
        net._value_layer(net._encoder(tf.constant(frames))[0]).numpy()[:, 0],
        atol=1e-5,
    )
    greedy = agent.policy.action(ts.restart(tf.constant(frames), batch_size=2)).action
    np.testing.assert_array_equal(greedy.numpy(), np.argmax(q.numpy(), axis=1))


def test_mlp_torso_on_cartpole(cartpole_specs):
    config = make_config(fc_layers=[16], dueling=True)
    net = build_agent(config, context_for(*cartpole_specs)).agent._q_network
    q, _ = net(tf.zeros([5, 4]))
    assert q.shape == (5, 2)
    # A fresh net: V's bias -0.2 and advantages that cancel at a zero torso output.
    np.testing.assert_allclose(q.numpy(), -0.2, atol=1e-6)
    q_time, _ = net(tf.ones([5, 3, 4]))  # [batch, time] observations, as in training
    assert q_time.shape == (5, 3, 2)


# --- flags and resume -----------------------------------------------------------------


def parse(argv: list[str]):
    flag_values = flags.FlagValues()
    define_flags(flag_values)
    flag_values(["prog", *argv])
    return config_from_flags(flag_values)


def test_dueling_flag_reaches_the_config_and_c51_refuses_it():
    assert parse([]).agent.dueling is False
    assert parse(["--dueling"]).agent.dueling is True
    assert parse(["--double_dqn", "--dueling"]).agent.double_dqn is True
    with pytest.raises(UserError, match="--dueling does not apply to --agent=c51"):
        parse(["--agent=c51", "--dueling"])


def test_a_run_is_not_resumed_with_the_other_head(tmp_path):
    open_run_dir(make_config(root_dir=str(tmp_path), fc_layers=[8]))
    with pytest.raises(UserError, match="dueling: run has False, flags give True"):
        open_run_dir(make_config(root_dir=str(tmp_path), fc_layers=[8], dueling=True))


def test_c51_with_dueling_is_a_one_line_cli_error(binaries, tmp_path):
    root = tmp_path / "run"
    outcome = binaries.run("experiments/train.py", "--agent=c51", "--dueling", f"--root_dir={root}")
    assert outcome.returncode == 2, outcome.stderr
    assert "Traceback" not in outcome.stderr
    lines = [line for line in outcome.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "--dueling does not apply to --agent=c51" in lines[0], lines
    assert not root.exists()


# --- real runs ------------------------------------------------------------------------


@pytest.mark.parametrize("double_dqn", [False, True], ids=["dqn", "double_dqn"])
def test_tiny_dueling_run_trains_and_exports_a_dueling_policy(tmp_path, tiny_config, double_dqn):
    config = tiny_config(tmp_path / "run", agent="dqn", dueling=True, double_dqn=double_dqn)
    result = train(config)
    assert result.env_steps >= 400 and result.train_steps > 0
    # The built agent is the one the run trained: DQN or double DQN, with the dueling head.
    parts = build(resolve_config(config))
    expected = dqn_agent.DdqnAgent if double_dqn else dqn_agent.DqnAgent
    assert type(parts.agent).__mro__[2] is expected  # under tfa_suite.agents.nstep's mask
    assert isinstance(parts.agent._q_network, DuelingQNetwork)
    # The export holds the two heads, so --dueling cannot have been dropped on the way.
    policy_dir = os.path.join(result.root_dir, "policy")
    names = [v.name for v in tf.saved_model.load(policy_dir).model_variables]
    assert any("DuelingQNetwork/value/kernel" in n for n in names), names
    assert any("DuelingQNetwork/advantage/kernel" in n for n in names), names
    assert not any("QNetwork/dense" in n for n in names), names  # QNetwork's Q layer
    policy = SavedPolicy(policy_dir)
    assert policy.train_step == result.train_steps
    assert set(policy(np.zeros((3, 4), np.float32)).tolist()) <= {0, 1}


@pytest.mark.slow
def test_dueling_dqn_solves_cartpole_seed_0(tmp_path):
    result = solve_cartpole(tmp_path, seed=0, dueling=True)
    assert result.solved_at_env_steps is not None and result.env_steps < 150_000
