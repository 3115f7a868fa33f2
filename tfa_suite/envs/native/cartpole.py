"""CartPole-v1 written in TensorFlow ops, batched, as a TF-Agents `TFEnvironment`.

The point is that a whole collect-train loop (driver, replay buffer, agent) can live in one
compiled graph: stepping never leaves the TensorFlow runtime, so there is no per-step Python
and no host round trip through `py_function`.

Dtypes: the physics runs in float64 and only the observation is cast to float32, as gymnasium
does. CartPole's upright equilibrium is unstable (a difference grows about e^4 per simulated
second), so float32 dynamics drift up to ~5e-5 from gymnasium within one random-action
episode, over the 1e-5 budget. In float64, with gymnasium's operation order and constants
hidden from grappler (see `_opaque`), the trajectories agree bit for bit on CPU, even over
500-step balancing episodes. float64 costs nothing next to a Q-network forward pass; the
catches are that TPUs have no float64 and that XLA (jit_compile) may round differently.
"""

from __future__ import annotations

import math

import tensorflow as tf
from tf_agents.environments import tf_environment
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

# The constants of gymnasium's CartPoleEnv, derived by the same Python float arithmetic
# so that each one is the identical float64.
GRAVITY = 9.8
MASSCART = 1.0
MASSPOLE = 0.1
TOTAL_MASS = MASSPOLE + MASSCART
LENGTH = 0.5  # half the pole's length
POLEMASS_LENGTH = MASSPOLE * LENGTH
FORCE_MAG = 10.0
TAU = 0.02
X_THRESHOLD = 2.4
THETA_THRESHOLD_RADIANS = 12 * 2 * math.pi / 360
RESET_BOUND = 0.05


def _opaque(value: float) -> tf.Tensor:
    """A float64 constant whose value and shape grappler cannot see.

    Inside a tf.function, grappler turns x / c into x * (1 / c) and regroups products that
    involve a scalar; both move the last bit, and CartPole's unstable equilibrium amplifies
    that about e^4 per simulated second until a balancing episode leaves gymnasium's. An
    unknown-shape placeholder is neither folded nor regrouped, so gymnasium's rounding stays.
    """
    return tf.raw_ops.PlaceholderWithDefault(
        input=tf.constant(value, tf.float64), shape=tf.TensorShape(None)
    )


def cartpole_dynamics(state: tf.Tensor, action: tf.Tensor) -> tf.Tensor:
    """One explicit-Euler step of a float64 [B, 4] state, bit for bit as gymnasium does it.

    That takes gymnasium's exact operation order (floating-point products do not associate)
    and constants hidden from grappler, see `_opaque`.
    """
    gravity, masspole, total_mass, length, polemass_length, tau = (
        _opaque(v) for v in (GRAVITY, MASSPOLE, TOTAL_MASS, LENGTH, POLEMASS_LENGTH, TAU)
    )
    x, x_dot, theta, theta_dot = tf.unstack(state, axis=-1)
    force = tf.where(tf.equal(action, 1), FORCE_MAG, -FORCE_MAG)
    force = tf.cast(force, tf.float64)
    costheta = tf.cos(theta)
    sintheta = tf.sin(theta)
    temp = (force + polemass_length * tf.square(theta_dot) * sintheta) / total_mass
    thetaacc = (gravity * sintheta - costheta * temp) / (
        length * (4.0 / 3.0 - masspole * tf.square(costheta) / total_mass)
    )
    xacc = temp - polemass_length * thetaacc * costheta / total_mass
    next_state = tf.stack(
        [
            x + tau * x_dot,
            x_dot + tau * xacc,
            theta + tau * theta_dot,
            theta_dot + tau * thetaacc,
        ],
        axis=-1,
    )
    # The opaque constants hid the static shape, which while loops and drivers need back.
    return tf.ensure_shape(next_state, state.shape)


def out_of_bounds(state: tf.Tensor) -> tf.Tensor:
    """gymnasium's termination test, per row of a [B, 4] state."""
    return (tf.abs(state[:, 0]) > X_THRESHOLD) | (tf.abs(state[:, 2]) > THETA_THRESHOLD_RADIANS)


class TFCartPoleEnv(tf_environment.TFEnvironment, tf.Module):
    """A batch of independent CartPole-v1 environments whose whole state lives in tf.Variables.

    Being a `tf.Module` makes the env checkpointable with `tf.train.Checkpoint(env=env)`,
    random generator included, so a restored run continues the same episodes. Every env
    auto-resets on the step after its LAST time step, like `TFPyEnvironment` does, because
    the drivers and replay buffers rely on that. The time step is derived from the state
    rather than stored: step count 0 means FIRST, the reset flag means LAST, and a LAST whose
    state is out of bounds is a termination (discount 0) rather than a time-out (discount 1).
    """

    def __init__(self, batch_size: int, seed: int | None = None, max_episode_steps: int = 500):
        tf.Module.__init__(self, name="tf_cartpole")
        observation_spec = tf.TensorSpec([4], tf.float32, name="observation")
        action_spec = tensor_spec.BoundedTensorSpec([], tf.int64, 0, 1, name="action")
        tf_environment.TFEnvironment.__init__(
            self, ts.time_step_spec(observation_spec), action_spec, batch_size=batch_size
        )
        self._max_episode_steps = max_episode_steps
        if seed is None:
            self._rng = tf.random.Generator.from_non_deterministic_state()
        else:
            self._rng = tf.random.Generator.from_seed(seed)
        # Start inside a fresh episode, so current_time_step() is valid before any reset().
        self._physics = tf.Variable(self._initial_states(), trainable=False, name="physics")
        self._step_count = tf.Variable(
            tf.zeros([batch_size], tf.int32), trainable=False, name="step_count"
        )
        self._needs_reset = tf.Variable(
            tf.zeros([batch_size], tf.bool), trainable=False, name="needs_reset"
        )

    def _initial_states(self) -> tf.Tensor:
        return self._rng.uniform([self.batch_size, 4], -RESET_BOUND, RESET_BOUND, dtype=tf.float64)

    def _current_time_step(self) -> ts.TimeStep:
        physics = self._physics.read_value()
        first = tf.equal(self._step_count, 0)
        last = self._needs_reset.read_value()
        step_type = tf.where(
            first, ts.StepType.FIRST, tf.where(last, ts.StepType.LAST, ts.StepType.MID)
        )
        # gymnasium pays 1.0 on every step, the terminating one included.
        reward = tf.where(first, 0.0, 1.0)
        discount = tf.where(last & out_of_bounds(physics), 0.0, 1.0)
        return ts.TimeStep(
            step_type=tf.cast(step_type, tf.int32, name="step_type"),
            reward=tf.identity(reward, name="reward"),
            discount=tf.identity(discount, name="discount"),
            observation=tf.cast(physics, tf.float32, name="observation"),
        )

    @tf.function(autograph=False)
    def _reset(self) -> ts.TimeStep:
        self._physics.assign(self._initial_states())
        self._step_count.assign(tf.zeros_like(self._step_count))
        self._needs_reset.assign(tf.zeros_like(self._needs_reset))
        return self._current_time_step()

    @tf.function(autograph=False)
    def _step(self, action: tf.Tensor) -> ts.TimeStep:
        action = tf.reshape(action, [self.batch_size])
        needs_reset = self._needs_reset.read_value()
        # Fresh states are drawn for every env on every step and kept only where needed:
        # a branch-free step stays one straight-line graph, and drawing B*4 numbers is cheap.
        physics = tf.where(
            needs_reset[:, None],
            self._initial_states(),
            cartpole_dynamics(self._physics.read_value(), action),
        )
        step_count = tf.where(needs_reset, 0, self._step_count + 1)
        self._physics.assign(physics)
        self._step_count.assign(step_count)
        self._needs_reset.assign(out_of_bounds(physics) | (step_count >= self._max_episode_steps))
        return self._current_time_step()

    def reseed(self, seed: int) -> None:
        """Restarts the reset-state stream from `seed`, so later resets are reproducible."""
        self._rng.reset_from_seed(seed)

    def set_state(self, physics_state: tf.Tensor, step_count: tf.Tensor | int = 0) -> None:
        """Puts every env at a given [B, 4] state, `step_count` steps into its episode.

        The next `step()` then applies its action from exactly this state, even one out of
        bounds (as gymnasium would), so tests can compare both from the same starting point.
        """
        self._physics.assign(tf.convert_to_tensor(physics_state, tf.float64))
        self._step_count.assign(tf.broadcast_to(tf.cast(step_count, tf.int32), [self.batch_size]))
        self._needs_reset.assign(tf.zeros_like(self._needs_reset))

    def get_state(self) -> tuple[tf.Tensor, tf.Tensor]:
        """Returns the float64 [B, 4] physics state and the [B] step counts."""
        return self._physics.read_value(), self._step_count.read_value()
