"""Pendulum-v1 written in TensorFlow ops, batched, as a TF-Agents `TFEnvironment`.

Like `tf_cartpole`, this lets a whole collect-train loop live in one compiled graph: stepping
never leaves the TensorFlow runtime, so there is no per-step Python and no `py_function`.

Dtypes: gymnasium keeps the state [theta, theta_dot] in float64 and so does this env; only
the observation is cast to float32. The upright position is unstable, so float32 dynamics
drift from gymnasium within an episode: over 200 random torques the observations part by
2e-5 in a median episode and by up to 1e-2. The action is float32, and
under NumPy 2's promotion rules (NEP 50: a Python float does not widen a NumPy float32)
gymnasium computes `3.0 * u` and `0.001 * u**2` in float32 before they meet the float64
terms; this env does the same, in gymnasium's operation order. The next state and the
observation then agree with gymnasium bit for bit on CPU, over whole episodes. CartPole had
to hide its constants from grappler (`tf_cartpole._opaque`), which turned its divisions into
multiplications; this step has no division, and grappler leaves its bits alone (the
eager-versus-graph test checks that), so it uses plain constants. XLA (jit_compile) may
still round differently, and TPUs have no float64.

The reward cannot always be bit-exact. gymnasium squares NumPy scalars with `**`, which calls
libm's `pow`/`powf`; glibc's are not correctly rounded, and in about 0.1% of steps `x**2`
differs by one ulp from `x * x`. No TensorFlow op calls libm's pow (`tf.pow` is Eigen's
vectorized one, which misrounds 15% of squares), so the cost squares with `x * x`. The squares
do not feed back into the dynamics, so the state stays exact; the float64 cost differs from
gymnasium's by at most ~1e-9 on those steps, and is identical on all others. TF-Agents'
reward spec is float32, whose rounding (2^-24 relative) dwarfs that anyway.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf
from tf_agents.environments import tf_environment
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

# The constants of gymnasium's PendulumEnv (g=10.0 default), derived by the same Python
# float arithmetic so that each one is the identical float64.
MAX_SPEED = 8
MAX_TORQUE = 2.0
DT = 0.05
GRAVITY = 10.0
MASS = 1.0
LENGTH = 1.0
GRAVITY_COEF = 3 * GRAVITY / (2 * LENGTH)  # multiplies sin(theta)
TORQUE_COEF = 3.0 / (MASS * LENGTH**2)  # multiplies the (float32) torque
SPEED_COST = 0.1
TORQUE_COST = 0.001  # applied in float32, as NumPy does to gymnasium's float32 torque
RESET_HIGH = (math.pi, 1.0)  # gymnasium's DEFAULT_X, DEFAULT_Y: reset is uniform in +-these
OBSERVATION_HIGH = (1.0, 1.0, float(MAX_SPEED))


def angle_normalize(x: tf.Tensor) -> tf.Tensor:
    """gymnasium's ((x + pi) % (2 pi)) - pi: floormod rounds like NumPy's float remainder."""
    return tf.math.floormod(x + math.pi, 2 * math.pi) - math.pi


def pendulum_dynamics(state: tf.Tensor, action: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """One step of a float64 [B, 2] state under float32 [B] torques: (next state, float64 cost).

    The cost is that of the state before the step, as in gymnasium (reward = -cost). Each
    line is one line of gymnasium's `step`, with the same operation order (floating-point
    sums and products do not associate) and dtype of every intermediate: a Python float
    takes the dtype of the tensor it meets, as under NumPy 2, so the torque terms are float32.
    """
    th, thdot = tf.unstack(state, axis=-1)
    u = tf.clip_by_value(tf.cast(action, tf.float32), -MAX_TORQUE, MAX_TORQUE)
    costs = (
        tf.square(angle_normalize(th))
        + SPEED_COST * tf.square(thdot)
        + tf.cast(TORQUE_COST * tf.square(u), tf.float64)
    )
    newthdot = thdot + (GRAVITY_COEF * tf.sin(th) + tf.cast(TORQUE_COEF * u, tf.float64)) * DT
    newthdot = tf.clip_by_value(newthdot, -float(MAX_SPEED), float(MAX_SPEED))
    newth = th + newthdot * DT
    return tf.stack([newth, newthdot], axis=-1), costs


def observation(state: tf.Tensor) -> tf.Tensor:
    """gymnasium's float32 [cos theta, sin theta, theta_dot], each computed in float64."""
    th, thdot = tf.unstack(state, axis=-1)
    return tf.cast(tf.stack([tf.cos(th), tf.sin(th), thdot], axis=-1), tf.float32)


class TFPendulumEnv(tf_environment.TFEnvironment, tf.Module):
    """A batch of independent Pendulum-v1 environments whose whole state lives in tf.Variables.

    Being a `tf.Module` makes the env checkpointable with `tf.train.Checkpoint(env=env)`,
    random generator included, so a restored run continues the same episodes. Every env
    auto-resets on the step after its LAST time step, like `TFPyEnvironment` does, because
    the drivers and replay buffers rely on that. Pendulum never terminates: the only LAST is
    the time limit's truncation, so the discount is always 1. Step count 0 means FIRST and
    the reset flag means LAST. Unlike CartPole's constant reward, Pendulum's depends on the
    state before the step, so the last reward is kept in a variable too.
    """

    def __init__(self, batch_size: int, seed: int | None = None, max_episode_steps: int = 200):
        tf.Module.__init__(self, name="tf_pendulum")
        high = np.array(OBSERVATION_HIGH, np.float32)
        observation_spec = tensor_spec.BoundedTensorSpec(
            [3], tf.float32, -high, high, name="observation"
        )
        action_spec = tensor_spec.BoundedTensorSpec(
            [1], tf.float32, -MAX_TORQUE, MAX_TORQUE, name="action"
        )
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
        self._reward = tf.Variable(tf.zeros([batch_size]), trainable=False, name="reward")

    def _initial_states(self) -> tf.Tensor:
        high = tf.constant(RESET_HIGH, tf.float64)
        return self._rng.uniform([self.batch_size, 2], -high, high, dtype=tf.float64)

    def _current_time_step(self) -> ts.TimeStep:
        first = tf.equal(self._step_count, 0)
        last = self._needs_reset.read_value()
        step_type = tf.where(
            first, ts.StepType.FIRST, tf.where(last, ts.StepType.LAST, ts.StepType.MID)
        )
        return ts.TimeStep(
            step_type=tf.cast(step_type, tf.int32, name="step_type"),
            reward=tf.where(first, 0.0, self._reward.read_value(), name="reward"),
            # Only truncations end an episode, and they do not cut off the return.
            discount=tf.ones([self.batch_size], name="discount"),
            observation=tf.identity(observation(self._physics.read_value()), name="observation"),
        )

    @tf.function(autograph=False)
    def _reset(self) -> ts.TimeStep:
        self._physics.assign(self._initial_states())
        self._step_count.assign(tf.zeros_like(self._step_count))
        self._needs_reset.assign(tf.zeros_like(self._needs_reset))
        self._reward.assign(tf.zeros_like(self._reward))
        return self._current_time_step()

    @tf.function(autograph=False)
    def _step(self, action: tf.Tensor) -> ts.TimeStep:
        action = tf.reshape(action, [self.batch_size])
        needs_reset = self._needs_reset.read_value()
        next_state, costs = pendulum_dynamics(self._physics.read_value(), action)
        # Fresh states are drawn for every env on every step and kept only where needed:
        # a branch-free step stays one straight-line graph, and drawing B*2 numbers is cheap.
        physics = tf.where(needs_reset[:, None], self._initial_states(), next_state)
        step_count = tf.where(needs_reset, 0, self._step_count + 1)
        self._physics.assign(physics)
        self._step_count.assign(step_count)
        self._needs_reset.assign(step_count >= self._max_episode_steps)
        # On a reset step this is the cost of a transition that did not happen, but a FIRST
        # time step reads reward 0 whatever the variable holds.
        self._reward.assign(tf.cast(-costs, tf.float32))
        return self._current_time_step()

    def reseed(self, seed: int) -> None:
        """Restarts the reset-state stream from `seed`, so later resets are reproducible."""
        self._rng.reset_from_seed(seed)

    def set_state(self, physics_state: tf.Tensor, step_count: tf.Tensor | int = 0) -> None:
        """Puts every env at a given [B, 2] state [theta, theta_dot], `step_count` steps in.

        The next `step()` then applies its action from exactly this state, even one that a
        reset could not produce (as gymnasium would), so tests can compare both from the same
        starting point. No transition led here, so the current reward reads 0.
        """
        self._physics.assign(tf.convert_to_tensor(physics_state, tf.float64))
        self._step_count.assign(tf.broadcast_to(tf.cast(step_count, tf.int32), [self.batch_size]))
        self._needs_reset.assign(tf.zeros_like(self._needs_reset))
        self._reward.assign(tf.zeros_like(self._reward))

    def get_state(self) -> tuple[tf.Tensor, tf.Tensor]:
        """Returns the float64 [B, 2] physics state [theta, theta_dot] and the [B] step counts."""
        return self._physics.read_value(), self._step_count.read_value()
