"""The training loop tfa_suite actually runs is free of host round trips with a TF env."""

import tfa_suite  # noqa: F401  isort: skip

import json
import subprocess
import sys

import pytest
import tensorflow as tf

from tfa_suite.loops.graph_checks import HOST_ROUND_TRIP_OPS, find_host_round_trips
from tfa_suite.run.train import build, resolve_config

# Every op type the compiled collect-train loop may contain on the graph backend, by what it
# is for. Each is a TensorFlow kernel that runs on the training device (the GPU when there is
# one); none calls back into the Python interpreter. Any other op fails the test: a
# numpy_function (PyFunc) or py_function (EagerPyFunc), a summary write, or an op that a
# change brings in, which must then be looked at and added here with its reason.
ALLOWED_OPS = {
    # The env's physics, the TD targets, the loss and the optimizer's arithmetic.
    "arithmetic": set(
        "Abs AddN AddV2 Cos DivNoNan FloorMod Maximum Minimum Mul Neg Pow RealDiv Sign Sin Sqrt "
        "Square Sub".split()
    ),
    # Reductions, comparisons and choices: episode ends, greedy actions, epsilon-greedy.
    "logic": set(
        "All ArgMax Equal Greater GreaterEqual Less LessEqual LogicalAnd LogicalNot LogicalOr Prod "
        "Select SelectV2 Sum Where".split()
    ),
    # The Q-network forward and its gradients.
    "network": set("BiasAdd BiasAddGrad MatMul Relu ReluGrad".split()),
    # Shapes, dtypes, constants and the function's own inputs.
    "structure": set(
        "Bitcast BroadcastArgs BroadcastTo Cast ConcatV2 Const ExpandDims Fill GatherNd Identity "
        "IdentityN Pack Placeholder PlaceholderWithDefault Range Reshape ScatterNd Shape Squeeze "
        "StopGradient StridedSlice Tile Transpose Unpack".split()
    ),
    # The loops (iterations, train steps, the driver's env steps), conds and nested
    # tf.functions; TensorLists carry loop values (TensorArray, tf.foldr).
    "control flow": set(
        "If NoOp StatefulPartitionedCall StatelessIf StatelessWhile TensorListFromTensor "
        "TensorListGetItem TensorListReserve While".split()
    ),
    # State in variables on the device: env state, replay storage (scatter on add, gather on
    # sample), counters and metrics, networks and the optimizer's moments.
    "variables": set(
        "AssignAddVariableOp AssignSubVariableOp AssignVariableOp ReadVariableOp ResourceGather "
        "ResourceScatterUpdate".split()
    ),
    # Random draws: env resets, exploration, replay sampling.
    "randomness": set(
        "RandomUniform RandomUniformInt RngReadAndSkip StatelessRandomUniformV2".split()
    ),
    # In-graph checks (TF-Agents' shape asserts, the loss's Inf/NaN check): a failed one
    # raises an error, it never calls Python.
    "checks": set("Assert CheckNumerics EnsureShape".split()),
    # TF-Agents' replay buffer orders its reads and writes with a tf.CriticalSection.
    "locks": set("ConsumeMutexLock MutexLock".split()),
    # Prioritized replay: the sum tree's scatters of leaves and their ancestors and the walk
    # down its levels (FloorDiv), the merge of a batch's duplicate leaves (Unique, Size,
    # UnsortedSegmentMax), the largest importance weight (Max) and the loss weighted by
    # them (MulNoNan, in TF-Agents' loss aggregation).
    "prioritized replay": set(
        "FloorDiv Max MulNoNan ResourceScatterNdUpdate Size Unique UnsortedSegmentMax".split()
    ),
    # The rollout loop and its agents: the rollout's TensorArrays (TensorList ops), the
    # policies' sampling (Multinomial, RandomStandardNormal) and log-probabilities, tanh
    # networks and their gradients, the Gaussian's softplus scale and tanh-squashed mean,
    # PPO's minibatch shuffle and gathers, advantage normalization (Mean, Rsqrt), the
    # value and L2 losses, REINFORCE's mask of complete returns (Cumsum, NotEqual, Any).
    "on-policy": set(
        "Any BroadcastGradientArgs Cumsum Exp GatherV2 InvertPermutation L2Loss Log LogSoftmax "
        "Mean Multinomial NotEqual RandomShuffle RandomStandardNormal Reciprocal Rsqrt Sigmoid "
        "Softplus SparseSoftmaxCrossEntropyWithLogits SqrtGrad SquaredDifference Tanh TanhGrad "
        "TensorListSetItem TensorListStack".split()
    ),
}
ALLOWED = frozenset().union(*ALLOWED_OPS.values())


def traced_loop(tiny_config, backend: str, **fields):
    config = resolve_config(
        tiny_config(
            backend=backend,
            **fields,
            fc_layers=[8],
            collect_steps_per_iteration=4,
            train_steps_per_iteration=2,
            batch_size=8,
            replay_capacity=256,
            initial_collect_steps=16,
        )
    )
    parts = build(config)
    spec = tf.TensorSpec([], tf.int64)
    return parts, parts.loop.collect_train.get_concrete_function(spec, spec)


def op_types(concrete_fn) -> set[str]:  # noqa: ANN001
    """Op types of a traced function, its loop bodies and nested functions included."""
    graph_def = concrete_fn.graph.as_graph_def()
    types = {node.op for node in graph_def.node}
    return types | {node.op for f in graph_def.library.function for node in f.node_def}


def test_the_allowed_ops_hold_no_host_round_trip():
    assert not ALLOWED & HOST_ROUND_TRIP_OPS


def test_graph_backend_loop_has_only_allowed_ops(tiny_config):
    parts, run = traced_loop(tiny_config, "graph")
    assert parts.backend == "graph"
    assert find_host_round_trips(run) == []
    types = op_types(run)
    assert types - ALLOWED == set(), "ops outside ALLOWED_OPS"
    # The traced loop really holds the work, not just counters: the env's physics, the
    # replay's writes and sampled reads, the Q-network's forward and backward passes, and
    # Adam's update (var -= lr * m / (sqrt(v) + eps), in plain ops in Keras 2's Adam).
    assert {"Cos", "Sin", "ResourceScatterUpdate", "ResourceGather"} <= types
    assert {"MatMul", "ReluGrad", "BiasAddGrad", "Sqrt", "AssignSubVariableOp"} <= types


def test_prioritized_replay_loop_stays_in_one_pure_graph(tiny_config):
    from tfa_suite.replay.prioritized import PrioritizedReplay

    parts, run = traced_loop(tiny_config, "graph", replay_sampler="prioritized")
    assert isinstance(parts.loop.replay, PrioritizedReplay)
    assert find_host_round_trips(run) == []
    types = op_types(run)
    assert types - ALLOWED == set(), "ops outside ALLOWED_OPS"
    assert ALLOWED_OPS["prioritized replay"] <= types  # the tree really is in the loop


@pytest.mark.parametrize(
    "agent, env",
    [
        ("ppo", "CartPole-v1"),
        ("ppo", "Pendulum-v1"),
        ("a2c", "CartPole-v1"),
        ("reinforce", "CartPole-v1"),
    ],
)
def test_rollout_loop_stays_in_one_pure_graph(tiny_config, agent, env):
    config = resolve_config(
        tiny_config(agent=agent, env=env, backend="graph", learning_rate_decay="linear")
    )
    parts = build(config)
    assert parts.backend == "graph"
    run = parts.loop.collect_train.get_concrete_function(tf.TensorSpec([], tf.int64))
    assert find_host_round_trips(run) == []
    types = op_types(run)
    assert types - ALLOWED == set(), "ops outside ALLOWED_OPS"
    # The work is in the graph: the env's physics, the rollout written and stacked, the
    # policy's sampling, the networks' backward pass and Adam's update.
    assert {"TensorListSetItem", "TensorListStack", "TanhGrad", "AssignSubVariableOp"} <= types
    assert ({"Cos", "Sin"} if env == "Pendulum-v1" else {"Multinomial"}) <= types
    if agent == "ppo":
        assert {"RandomShuffle", "GatherV2"} <= types  # minibatches drawn in the graph


def test_python_backend_loop_fails_the_same_check(tiny_config):
    # The same checks on the gymnasium path find TFPyEnvironment's numpy_function (the
    # PyFunc op), and only that, so the test above cannot pass vacuously.
    parts, run = traced_loop(tiny_config, "python")
    assert parts.backend == "python"
    assert find_host_round_trips(run) and all(
        op.endswith(":PyFunc") for op in find_host_round_trips(run)
    )
    assert op_types(run) - ALLOWED == {"PyFunc"}


def test_graph_loop_runs_and_counts_env_steps(tiny_config):
    parts, _ = traced_loop(tiny_config, "graph")
    loop = parts.loop
    loop.prefill(16)
    assert int(loop.env_steps.result()) >= 16
    before = int(loop.env_steps.result())
    loss = float(loop.collect_train(tf.constant(3, tf.int64), tf.constant(2, tf.int64)))
    assert tf.math.is_finite(loss)
    # Each iteration counts 4 to 5 env steps (2 envs at a time; boundary steps do not count).
    assert before + 3 * 4 <= int(loop.env_steps.result()) <= before + 3 * (4 + 2 - 1)
    assert int(parts.agent.train_step_counter.numpy()) == 6


# Run in a fresh process, which splits the CPU into two logical devices before TensorFlow
# starts and makes the second one the training device: the check then fails for anything
# left on the default device, which on a one-device machine it never could.
ON_SECOND_CPU = """
import json
import tfa_suite
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)
from tfa_suite.catalog import make_config
from tfa_suite.run import build as building, train as training
building.training_device = lambda: "/CPU:1"
config = training.resolve_config(make_config(**json.loads(CONFIG)))
parts = building.build(config)
assert parts.device == "/CPU:1"
parts.loop.prefill(16)
parts.loop.run(2)  # creates the optimizer's slots
variables = (
    list(parts.tf_env.variables)
    + list(parts.loop.replay.variables())
    + list(parts.agent.variables)
    + list(parts.loop.variables)
    + list(parts.built.agent._optimizer.variables())
    + list(parts.graph_evaluator._env.variables)
)
assert len(variables) > 20, len(variables)
wrong = sorted({(v.name, v.device) for v in variables if not v.device.endswith("CPU:1")})
assert not wrong, wrong
print("ok", len(variables))
"""


def test_env_replay_and_networks_live_on_the_training_device(tiny_config):
    config = tiny_config(fc_layers=[8], batch_size=8, initial_collect_steps=16)
    code = f"CONFIG = {json.dumps(json.dumps(config.flat()))}\n{ON_SECOND_CPU}"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("ok"), proc.stdout
