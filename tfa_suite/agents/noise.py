"""Collect noise for deterministic actors (DDPG, TD3): independent per parallel env.

TF-Agents' `GaussianPolicy` and `OUNoisePolicy` draw one noise vector per call and add
it to every row of the batch, so with `--num_envs > 1` every env would explore with the
same noise at the same step, and the OU process would never restart at episode ends.
This policy draws each row's noise separately, keeps one OU state per env (reset when
that env's episode starts), and clips the noisy action to the spec.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tf_agents.policies import tf_policy
from tf_agents.trajectories import policy_step

GAUSSIAN, ORNSTEIN_UHLENBECK = "gaussian", "ou"


class ActionNoisePolicy(tf_policy.TFPolicy):
    """`wrapped`'s action plus per-row Gaussian or Ornstein-Uhlenbeck noise, clipped.

    `scale` is the standard deviation of each step's Gaussian draw, in action units.
    OU noise follows x <- (1 - damping) * x + N(0, scale^2), as TF-Agents' OUProcess.
    """

    def __init__(
        self,
        wrapped: tf_policy.TFPolicy,
        scale: np.ndarray,
        kind: str,
        num_envs: int,
        damping: float = 0.15,
    ):
        if kind not in (GAUSSIAN, ORNSTEIN_UHLENBECK):
            raise ValueError(f"unknown noise kind {kind!r}")
        super().__init__(
            wrapped.time_step_spec,
            wrapped.action_spec,
            wrapped.policy_state_spec,
            wrapped.info_spec,
            clip=True,  # TFPolicy.action clips the returned action to the spec
            name="action_noise_policy",
        )
        self._wrapped = wrapped
        self._kind = kind
        self._scale = tf.constant(scale, wrapped.action_spec.dtype)
        self._damping = damping
        self._ou_state = None
        if kind == ORNSTEIN_UHLENBECK:
            self._ou_state = tf.Variable(
                tf.zeros([num_envs, *wrapped.action_spec.shape], wrapped.action_spec.dtype),
                trainable=False,
                name="ou_state",
            )

    def _variables(self) -> list[tf.Variable]:
        extra = [self._ou_state] if self._ou_state is not None else []
        return list(self._wrapped.variables()) + extra

    def _action(self, time_step, policy_state, seed):  # noqa: ANN001, ANN202
        step = self._wrapped.action(time_step, policy_state)
        action = step.action
        noise = tf.random.normal(tf.shape(action), dtype=action.dtype) * self._scale
        if self._ou_state is not None:
            # A new episode restarts its env's process at zero.
            first = tf.reshape(time_step.is_first(), [-1] + [1] * self.action_spec.shape.rank)
            previous = tf.where(first, tf.zeros_like(self._ou_state), self._ou_state)
            noise = self._ou_state.assign((1.0 - self._damping) * previous + noise)
        return policy_step.PolicyStep(action + noise, step.state, step.info)
