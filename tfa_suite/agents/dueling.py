"""The dueling Q-network (Wang et al. 2016): one torso, a value head and an advantage head.

Q(s, a) = V(s) + A(s, a) - mean_a' A(s, a') (their eq. 9). Subtracting the mean makes the
split identifiable: mean_a Q(s, a) = V(s), and a constant added to every advantage leaves Q
unchanged. TF-Agents 0.19 has no dueling network, so this is QNetwork with its last layer
replaced by the two heads; it takes the QNetwork arguments tfa_suite uses, so
`build_dqn` swaps one class for the other.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf
from tf_agents.networks import encoding_network, network, q_network
from tf_agents.typing import types


def dueling_q_values(value: tf.Tensor, advantage: tf.Tensor) -> tf.Tensor:
    """V [..., 1] and A [..., num_actions] -> Q [..., num_actions]; the mean is over actions."""
    return value + advantage - tf.reduce_mean(advantage, axis=-1, keepdims=True)


def _head(units: int, bias: float, name: str) -> tf.keras.layers.Dense:
    # As QNetwork's Q layer: small uniform kernels, so the initial Q-values are near the bias.
    return tf.keras.layers.Dense(
        units,
        kernel_initializer=tf.random_uniform_initializer(minval=-0.03, maxval=0.03),
        bias_initializer=tf.constant_initializer(bias),
        name=name,
    )


class DuelingQNetwork(network.Network):
    """QNetwork's EncodingNetwork torso, then V (1 unit) and A (num_actions units) heads."""

    def __init__(
        self,
        input_tensor_spec: types.NestedTensorSpec,
        action_spec: types.NestedTensorSpec,
        preprocessing_layers: types.NestedLayer | None = None,
        conv_layer_params: Sequence[tuple[int, int, int]] | None = None,
        fc_layer_params: Sequence[int] | None = (75, 40),
        name: str = "DuelingQNetwork",
    ):
        # Every argument stays a plain value: `Network.copy` (the target network) calls
        # __init__ again with them, and EncodingNetwork copies the preprocessing layers.
        q_network.validate_specs(action_spec, input_tensor_spec)
        flat_action_spec = tf.nest.flatten(action_spec)[0]
        num_actions = int(flat_action_spec.maximum - flat_action_spec.minimum + 1)
        encoder = encoding_network.EncodingNetwork(
            input_tensor_spec,
            preprocessing_layers=preprocessing_layers,
            conv_layer_params=conv_layer_params,
            fc_layer_params=fc_layer_params,
            activation_fn=tf.keras.activations.relu,
            batch_squash=True,
        )
        super().__init__(input_tensor_spec=input_tensor_spec, state_spec=(), name=name)
        self._encoder = encoder
        # V's bias is QNetwork's Q bias (-0.2), so a fresh dueling net starts at the same
        # Q-values; A's bias is 0, since any bias common to all actions cancels in the mean.
        self._value_layer = _head(1, -0.2, "value")
        self._advantage_layer = _head(num_actions, 0.0, "advantage")

    def call(self, observation, step_type=None, network_state=(), training=False):  # noqa: ANN001, ANN201
        state, network_state = self._encoder(
            observation, step_type=step_type, network_state=network_state, training=training
        )
        value = self._value_layer(state, training=training)
        advantage = self._advantage_layer(state, training=training)
        return dueling_q_values(value, advantage), network_state
