"""Exactly N batched env steps with a policy, inside the calling graph.

Why not TF-Agents' `DynamicStepDriver`: the driver counts only non-boundary steps, so its
calls vary in length, and a fixed [T, N] shape is what lets the rollout loop's minibatches
compile once and the Ray learner add one round of every actor's segment at once. This is
that driver's body (policy action, env step, observers) run a fixed number of times.
"""

from __future__ import annotations

import tensorflow as tf
from tf_agents.trajectories import trajectory as trajectory_lib


def collect_fixed_steps(env, policy, num_steps, observers, spec=None):  # noqa: ANN001, ANN201
    """Exactly `num_steps` batched env steps with `policy`, inside the calling graph.

    Returns the trajectory entries stacked time-major ([T, N, ...], a Trajectory nest) and
    the env's time step after the last one. `num_steps` may be a Python int or a tensor;
    `spec` (default: the policy's trajectory spec) types the stored entries.
    Each entry goes to every observer as it is made. Used by the rollout loop and by the
    Ray actors (`tfa_suite.loops.ray.worker`).
    """
    batch = env.batch_size
    time_step = env.current_time_step()
    policy_state = policy.get_initial_state(batch)
    arrays = tf.nest.map_structure(
        lambda s: tf.TensorArray(s.dtype, size=num_steps, element_shape=[batch, *s.shape]),
        spec if spec is not None else policy.trajectory_spec,
    )

    def step(t: tf.Tensor, time_step, arrays):  # noqa: ANN001, ANN202
        action_step = policy.action(time_step, policy_state)
        next_time_step = env.step(action_step.action)
        entry = trajectory_lib.from_transition(time_step, action_step, next_time_step)
        for observer in observers:
            observer(entry)
        arrays = tf.nest.map_structure(lambda a, x: a.write(t, x), arrays, entry)
        return t + 1, next_time_step, arrays

    _, time_step, arrays = tf.while_loop(
        lambda t, *_: t < num_steps, step, (tf.constant(0), time_step, arrays)
    )
    return tf.nest.map_structure(lambda a: a.stack(), arrays), time_step
