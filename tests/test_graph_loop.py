"""The training loop tfa_suite actually runs is free of host round trips with a TF env."""

import tfa_suite  # noqa: F401  isort: skip

import tensorflow as tf

from tfa_suite import envs
from tfa_suite.config import make_config
from tfa_suite.graph_checks import find_host_round_trips
from tfa_suite.training import build, resolve_config


def traced_loop(backend: str):
    config = resolve_config(
        make_config(
            env="CartPole-v1",
            backend=backend,
            fc_layers=[8],
            num_envs=2,
            collect_steps_per_iteration=4,
            train_steps_per_iteration=2,
            batch_size=8,
            replay_capacity=256,
            initial_collect_steps=16,
            root_dir="unused",
        )
    )
    parts = build(config, envs.EnvSpec(config.run.env))
    spec = tf.TensorSpec([], tf.int64)
    return parts, parts.loop.collect_train.get_concrete_function(spec, spec)


def test_graph_backend_loop_has_no_host_round_trips():
    parts, run = traced_loop("graph")
    assert parts.backend == "graph"
    assert find_host_round_trips(run) == []
    # The traced loop really contains the work: replay sampling and a gradient update.
    op_types = {n.op for f in run.graph.as_graph_def().library.function for n in f.node_def}
    assert "ResourceApplyAdam" in op_types or "AssignVariableOp" in op_types
    assert "While" in op_types or "StatelessWhile" in {n.op for n in run.graph.as_graph_def().node}


def test_python_backend_loop_is_detected_as_impure():
    # The same check on the gymnasium path finds TFPyEnvironment's py_function, so the
    # purity test above cannot pass vacuously.
    parts, run = traced_loop("python")
    assert parts.backend == "python"
    assert any(op.endswith(("EagerPyFunc", "PyFunc")) for op in find_host_round_trips(run))


def test_graph_loop_runs_and_counts_env_steps():
    parts, _ = traced_loop("graph")
    loop = parts.loop
    loop.prefill(16)
    assert int(loop.env_steps.result()) >= 16
    before = int(loop.env_steps.result())
    loss = float(loop.collect_train(tf.constant(3, tf.int64), tf.constant(2, tf.int64)))
    assert tf.math.is_finite(loss)
    assert int(loop.env_steps.result()) >= before + 3 * 4 - 2  # boundary steps do not count
    assert int(parts.agent.train_step_counter.numpy()) == 6


def test_env_replay_and_networks_live_on_the_training_device():
    parts, _ = traced_loop("graph")
    variables = (
        list(parts.tf_env.variables)
        + list(parts.loop.replay.variables())
        + list(parts.agent.variables)
    )
    assert len(variables) > 10
    expected = parts.device.split(":")[0].strip("/").upper()  # "CPU" here, "GPU" on a GPU
    devices = {v.device for v in variables}
    assert all(expected in d.upper() for d in devices), devices
