"""Advantage and return math on a rollout of TF-Agents trajectories, in TF ops.

A rollout is a Trajectory batch [N, T]: entry t of a row holds the observation o_t, the
action a_t taken there, the reward r_t and discount d_t of the time step that followed,
and that step's type. Where o_t is an episode's LAST observation the entry is a
*boundary*: the env ignored a_t and began the next episode, so nothing is learned from it.
Rewards, discounts and step types are read as TF-Agents writes them:

- termination: next step LAST with d_t = 0, so nothing is bootstrapped past it;
- truncation (a time limit): next step LAST with d_t = 1, so the value of the final
  observation is bootstrapped, as it must be (gymnasium's terminated/truncated split);
- either way the advantage recursion stops at the episode's end, so no credit crosses
  into the next episode.

TF-Agents' own `value_ops.generalized_advantage_estimation` takes one discount per step
for both the bootstrap and the recursion, so it cannot stop the recursion at a truncated
end while still bootstrapping there; `gae` below keeps the two apart.
"""

from __future__ import annotations

import tensorflow as tf
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory as trajectory_lib


def gae(
    rollout: trajectory_lib.Trajectory,
    values: tf.Tensor,
    bootstrap_value: tf.Tensor,
    gamma: float,
    lam: float,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Generalized advantage estimates (Schulman et al. 2016) and value targets, [N, T].

    `values` [N, T] are V(o_t) for the rollout's observations; `bootstrap_value` [N] is
    V of the observation after the rollout's last entry (the env's current time step).

        delta_t = r_t + gamma * d_t * V(o_{t+1}) - V(o_t)
        A_t     = delta_t + gamma * lam * d_t * [o_{t+1} is not LAST] * A_{t+1}

    Boundary entries get advantage 0 and target 0; their weight in any loss must be 0
    (`boundary_mask`). The targets are A_t + V(o_t), the TD(lambda) returns.
    """
    rewards = tf.cast(rollout.reward, tf.float32)
    discounts = tf.cast(rollout.discount, tf.float32)
    values = tf.cast(values, tf.float32)
    next_values = tf.concat([values[:, 1:], tf.cast(bootstrap_value, tf.float32)[:, None]], 1)
    continues = tf.cast(~tf.equal(rollout.next_step_type, ts.StepType.LAST), tf.float32)
    valid = boundary_mask(rollout)
    deltas = (rewards + gamma * discounts * next_values - values) * valid
    decay = gamma * lam * discounts * continues

    # Backwards over time: A_t = delta_t + decay_t * A_{t+1}, with A_T = 0.
    def step(next_advantage: tf.Tensor, inputs: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
        delta, weight = inputs
        return delta + weight * next_advantage

    advantages = tf.scan(
        step,
        (tf.transpose(deltas), tf.transpose(decay)),
        initializer=tf.zeros_like(deltas[:, 0]),
        reverse=True,
    )
    advantages = tf.transpose(advantages) * valid
    return advantages, (advantages + values) * valid


def boundary_mask(rollout: trajectory_lib.Trajectory) -> tf.Tensor:
    """1.0 for real transitions, 0.0 for LAST -> FIRST boundary entries; [N, T] float32."""
    return tf.cast(~tf.equal(rollout.step_type, ts.StepType.LAST), tf.float32)
