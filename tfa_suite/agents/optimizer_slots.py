"""Optimizer slots created when an agent is built, so its first compiled train step traces once.

A Keras optimizer creates its slots (Adam's moments, RMSprop's averages) and, with a
learning-rate schedule, its current-rate variable on its first `apply_gradients`. Inside a
`tf.function` that first call makes TensorFlow trace the whole function twice: once with
variable creation allowed, then again without (measured here: `collect_train` traced 2x for
DQN and PPO, about 2 s of a tiny run each). Creating the same variables up front, from the
same variable list in the same order as the agent's train step passes it, leaves the
checkpoint's layout and every value unchanged and halves the tracing.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf


def create_optimizer_slots(optimizer: tf.keras.optimizers.Optimizer, variables: Sequence) -> None:
    """What `optimizer.apply_gradients` on `variables` creates first, created now.

    `variables` must be the list, in order, that the agent's train step gives the
    optimizer: slot i belongs to variable i in the checkpoint.
    """
    if isinstance(optimizer, tf.keras.optimizers.legacy.Optimizer):
        # SacAgent converts its optimizers to Keras' legacy ones, whose first update does
        # this (their slots are saved beside the variables they belong to, by name).
        with tf.name_scope(optimizer._name), tf.init_scope():  # noqa: SLF001
            optimizer._create_all_weights(list(variables))  # noqa: SLF001
        return
    with tf.name_scope(optimizer.name), tf.init_scope():
        optimizer.build(list(variables))
    schedule = getattr(optimizer, "_learning_rate", None)
    if isinstance(schedule, tf.keras.optimizers.schedules.LearningRateSchedule):
        # A schedule's current rate is a variable made on the first update (tf_keras'
        # `_compute_current_learning_rate`, which that update calls first anyway).
        optimizer._compute_current_learning_rate()  # noqa: SLF001


def critic_variables(*networks: tf.Module) -> list[tf.Variable]:
    """The twin critics' variables in the order TF-Agents' TD3 and SAC train them: a list
    of an `ObjectIdentitySet`, whose order is that of the objects' ids in this process."""
    from tensorflow.python.util import object_identity

    joined = [v for network in networks for v in network.trainable_variables]
    return list(object_identity.ObjectIdentitySet(joined))


def ppo_variables(actor: tf.Module, value: tf.Module) -> list[tf.Variable]:
    """PPOAgent's trained variables: the actor's and the value network's, sorted by name."""
    from tensorflow.python.util import object_identity

    joined = object_identity.ObjectIdentitySet(actor.trainable_weights + value.trainable_weights)
    return sorted(joined, key=lambda v: v.name)
