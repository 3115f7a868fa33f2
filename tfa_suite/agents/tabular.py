"""Tabular Q-learning (Watkins 1989) as a TF-Agents agent, on a discrete observation or a grid.

The Q-table is one `tf.Variable` of shape [num_states, num_actions], so the replay loop,
checkpoints, resume and the SavedModel export treat it like any network's weights.

A Discrete observation's value is the table's row (`DiscreteStates`; a MultiDiscrete one's
components are flattened to one row index), with no grid flags. A Box observation is
discretized inside the TF graph, in `ObservationGrid`, used by the greedy policy
and by the train step alike, and not in a gymnasium wrapper around the env. Then the
TF-native CartPole (the graph backend) trains this agent with no host round trip, the
replay stores raw observations, and the exported SavedModel takes raw observations, so
`experiments/evaluate.py` plays it as it plays a DQN policy.

Each observation dimension i is cut into `grid_sizes[i]` equal bins between `obs_low[i]`
and `obs_high[i]`; values outside fall into the edge bins. The bins are flattened in
row-major order (the first dimension varies slowest, as `np.ravel_multi_index` does).

The replay loop feeds it batches of (s, a, r, s') pairs; pairs whose first step is LAST
(they span two episodes) are skipped. All TD errors of a batch are computed from the table
as it was before the batch. The k pairs of a batch that hit one (s, a) are combined as k
sequential updates toward their mean target would be: their TD errors are averaged
(`tf.math.unsorted_segment_mean`) and the entry moves 1 - (1 - alpha)^k of the way. That
is exact when their targets agree, never overshoots, does not depend on the order of the
batch, and keeps one sampled pair worth one update whatever the batch size (a plain mean
would give k pairs the weight of one; a sum of k alpha-steps can overshoot).
With a small replay and about one sampled pair per collected step, as the shipped configs
set it up, this is plain online Q-learning over lightly shuffled recent experience.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from tf_agents.agents import data_converter, tf_agent
from tf_agents.policies import epsilon_greedy_policy, tf_policy
from tf_agents.trajectories import policy_step

from tfa_suite.agents.encoding import is_discrete, ranges
from tfa_suite.agents.interface import AgentContext, BuiltAgent, ReplayHooks, describe_spec
from tfa_suite.agents.q_learning import linear_epsilon
from tfa_suite.agents.registry import DISCRETE, AgentSpec, register_agent
from tfa_suite.config import (
    Choice,
    FloatRange,
    IntRange,
    RunConfig,
    SearchParam,
    Section,
    _field,
    need,
)
from tfa_suite.errors import UnsupportedSpaceError, UserError

# env id -> (grid_sizes, obs_low, obs_high), used for each of those flags left empty.
DEFAULT_GRIDS: dict[str, tuple[list[int], list[float], list[float]]] = {
    # [x, x_dot, theta, theta_dot]: only the pole is binned, as in the classic (1, 1, 6, 12)
    # grid: 6 angle bins within the termination bound of 12 degrees, 12 angular-velocity
    # bins over +-2 rad/s, where balancing happens. See experiments/configs/cartpole_tabular.cfg.
    "CartPole-v1": ([1, 1, 6, 12], [-2.4, -3.0, -0.2095, -2.0], [2.4, 3.0, 0.2095, 2.0]),
    # [position, velocity] within MountainCar's own bounds.
    "MountainCar-v0": ([20, 20], [-1.2, -0.07], [0.6, 0.07]),
}
DEFAULT_GRIDS["CartPole-v0"] = DEFAULT_GRIDS["CartPole-v1"]

GRID_FLAGS = ("grid_sizes", "obs_low", "obs_high")
# A larger table is a typo in --grid_sizes (or a job for a network), not a Q-table.
MAX_TABLE_ENTRIES = 50_000_000
# A discrete observation with more joint states than this is a job for a network.
MAX_DISCRETE_STATES = 10_000_000


@dataclasses.dataclass
class TabularQConfig(Section):
    # --- the grid ---
    grid_sizes: list[int] = _field(
        [], "bins per observation dimension; empty takes the env's default (CartPole, MountainCar)"
    )
    obs_low: list[float] = _field(
        [], "lower edge of the grid per observation dimension; below it is the first bin"
    )
    obs_high: list[float] = _field(
        [], "upper edge of the grid per observation dimension; above it is the last bin"
    )
    # --- the update ---
    learning_rate: float = _field(0.1, "Q-learning step size alpha, in (0, 1]")
    gamma: float = _field(0.99, "discount factor")
    initial_q: float = _field(
        0.0, "initial value of every table entry (0 is optimistic for MountainCar's -1 rewards)"
    )
    # --- exploration ---
    epsilon_start: float = _field(1.0, "epsilon-greedy epsilon at env step 0")
    epsilon_end: float = _field(0.05, "epsilon after the decay")
    epsilon_decay_steps: int = _field(10_000, "env steps of linear decay from start to end")

    # What experiments/tune.py searches by default: the update and the exploration; the
    # grid stays the env's (or the one given).
    SEARCH_SPACE: ClassVar[dict[str, SearchParam]] = {
        "learning_rate": FloatRange(0.01, 0.5, log=True),
        "gamma": Choice((0.9, 0.95, 0.99, 0.995)),
        "epsilon_end": FloatRange(0.01, 0.1),
        "epsilon_decay_steps": IntRange(1_000, 100_000, log=True),
    }

    def validate(self, run: RunConfig) -> None:
        need(all(n >= 1 for n in self.grid_sizes), f"--grid_sizes must be >= 1: {self.grid_sizes}")
        need(
            all(math.isfinite(v) for n in ("obs_low", "obs_high") for v in getattr(self, n)),
            "--obs_low and --obs_high must be finite numbers",
        )
        need(0.0 < self.learning_rate <= 1.0, "--learning_rate must be in (0, 1]")
        need(0.0 <= self.gamma <= 1.0, "--gamma must be in [0, 1]")
        need(math.isfinite(self.initial_q), "--initial_q must be a finite number")
        for name in ("epsilon_start", "epsilon_end"):
            need(0.0 <= getattr(self, name) <= 1.0, f"--{name} must be in [0, 1]")
        need(self.epsilon_decay_steps >= 0, "--epsilon_decay_steps must be >= 0")
        # The grid's lengths and the env's defaults are checked by the builder, after the
        # registry's action check: on Pendulum, "continuous actions" is the news, not the grid.


def resolve_grid(cfg: TabularQConfig, env: str) -> tuple[list[int], list[float], list[float]]:
    """The grid flags, each empty one taken from the env's defaults."""
    missing = [name for name in GRID_FLAGS if not getattr(cfg, name)]
    if missing and env not in DEFAULT_GRIDS:
        raise UserError(
            f"--agent=tabular_q has no default grid for {env} (defaults: "
            f"{', '.join(sorted(DEFAULT_GRIDS))}); set "
            f"{', '.join(f'--{n}' for n in missing)}, one value per observation dimension"
        )
    defaults = DEFAULT_GRIDS.get(env, ([], [], []))
    sizes, low, high = (
        list(getattr(cfg, name) or default) for name, default in zip(GRID_FLAGS, defaults)
    )
    if len({len(sizes), len(low), len(high)}) != 1:
        raise UserError(
            f"--grid_sizes, --obs_low and --obs_high have {len(sizes)}, {len(low)} and "
            f"{len(high)} values (empty ones are {env}'s defaults); give one per dimension"
        )
    bad = [i for i, (lo, hi) in enumerate(zip(low, high)) if not lo < hi]
    need(not bad, f"--obs_low must be < --obs_high in every dimension; not in {bad}")
    return sizes, [float(v) for v in low], [float(v) for v in high]


class ObservationGrid(tf.Module):
    """Maps [..., D] observations to [...] int64 state indices in [0, num_states)."""

    def __init__(self, sizes: list[int], low: list[float], high: list[float]):
        super().__init__(name="observation_grid")
        self.sizes = tuple(int(n) for n in sizes)
        self.num_states = int(np.prod(self.sizes))
        # float64, so bin edges of float32 observations are not moved by rounding.
        self._low = tf.constant(low, tf.float64)
        self._width = tf.constant(high, tf.float64) - self._low
        self._bins = tf.constant(self.sizes, tf.float64)
        strides = [int(np.prod(self.sizes[i + 1 :])) for i in range(len(self.sizes))]
        self._strides = tf.constant(strides, tf.int64)

    def bins(self, observation: tf.Tensor) -> tf.Tensor:
        """[..., D] -> [..., D] bin per dimension, clipped into [0, grid_sizes[i] - 1]."""
        scaled = (tf.cast(observation, tf.float64) - self._low) / self._width * self._bins
        # Clip before the cast: a far-out value would overflow int64.
        return tf.cast(tf.clip_by_value(tf.floor(scaled), 0.0, self._bins - 1.0), tf.int64)

    def __call__(self, observation: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(self.bins(observation) * self._strides, axis=-1)


class DiscreteStates(tf.Module):
    """Maps Discrete ([...]) or MultiDiscrete ([..., k]) observations to [...] int64 state
    indices in [0, num_states): the value itself, or the components' values flattened in
    row-major order (the first component varies slowest, as `np.ravel_multi_index`)."""

    def __init__(self, spec: tf.TensorSpec):
        super().__init__(name="discrete_states")
        low, sizes = ranges(spec)
        self.scalar = spec.shape.rank == 0
        self.sizes = tuple(int(n) for n in sizes)
        self.num_states = int(np.prod(self.sizes, dtype=np.float64))
        self._low = tf.constant(low, tf.int64)
        strides = [int(np.prod(self.sizes[i + 1 :])) for i in range(len(self.sizes))]
        self._strides = tf.constant(strides, tf.int64)

    def __call__(self, observation: tf.Tensor) -> tf.Tensor:
        x = tf.cast(observation, tf.int64)
        if self.scalar:
            return x - self._low[0]
        return tf.reduce_sum((x - self._low) * self._strides, axis=-1)


class GreedyTablePolicy(tf_policy.TFPolicy):
    """argmax_a Q[grid(observation), a]; ties go to the lowest action."""

    def __init__(self, time_step_spec, action_spec, q_table: tf.Variable, grid):  # noqa: ANN001
        super().__init__(time_step_spec, action_spec, name="greedy_table_policy")
        self._q_table = q_table
        self._grid = grid

    def _variables(self) -> list[tf.Variable]:
        return [self._q_table]

    def _distribution(self, time_step, policy_state):  # noqa: ANN001, ANN202
        q_values = tf.gather(self._q_table, self._grid(time_step.observation))
        action = tf.argmax(q_values, axis=-1) + int(self.action_spec.minimum)
        action = tf.cast(action, self.action_spec.dtype)
        return policy_step.PolicyStep(tfp.distributions.Deterministic(loc=action), policy_state)


class TabularQAgent(tf_agent.TFAgent):
    """Q[s, a] += alpha * (r + gamma * discount * max_a' Q[s', a'] - Q[s, a]) per batch."""

    def __init__(
        self,
        time_step_spec,  # noqa: ANN001
        action_spec,  # noqa: ANN001
        grid: ObservationGrid | DiscreteStates,
        learning_rate: float,
        gamma: float,
        initial_q: float,
        epsilon,  # noqa: ANN001  a float or a zero-argument callable
        train_step_counter: tf.Variable,
    ):
        tf.Module.__init__(self, name="tabular_q")
        self._grid = grid
        self._num_actions = int(action_spec.maximum) - int(action_spec.minimum) + 1
        self._action_min = int(action_spec.minimum)
        self._learning_rate = learning_rate
        self._gamma = gamma
        self._q_table = tf.Variable(
            tf.fill([grid.num_states, self._num_actions], float(initial_q)), name="q_table"
        )
        policy = GreedyTablePolicy(time_step_spec, action_spec, self._q_table, grid)
        # Epsilon 1 during the initial collection makes this the uniform-random policy.
        collect_policy = epsilon_greedy_policy.EpsilonGreedyPolicy(policy, epsilon=epsilon)
        super().__init__(
            time_step_spec,
            action_spec,
            policy,
            collect_policy,
            train_sequence_length=2,
            train_step_counter=train_step_counter,
        )
        # to_transition of [B, 2] steps, with the time dimension squeezed out.
        self._as_transition = data_converter.AsTransition(self.data_context, squeeze_time_dim=True)

    @property
    def q_table(self) -> tf.Variable:
        return self._q_table

    def _initialize(self) -> None:
        return None

    def _train(self, experience, weights=None) -> tf_agent.LossInfo:  # noqa: ANN001
        time_steps, policy_steps, next_time_steps = self._as_transition(experience)
        states = self._grid(time_steps.observation)
        actions = tf.cast(policy_steps.action, tf.int64) - self._action_min
        q_sa = tf.gather_nd(self._q_table, tf.stack([states, actions], axis=-1))
        next_max = tf.reduce_max(
            tf.gather(self._q_table, self._grid(next_time_steps.observation)), -1
        )
        target = next_time_steps.reward + self._gamma * next_time_steps.discount * next_max
        td = target - q_sa
        # Sample weights (e.g. importance weights) scale each pair's squared TD error in the
        # loss, and so its TD error in the update: the update is a step along -d(loss)/dQ.
        weights = tf.ones_like(td) if weights is None else tf.cast(weights, td.dtype)
        # A pair whose first step is LAST spans two episodes (LAST -> FIRST): no transition.
        valid = ~time_steps.is_last()
        loss = tf.reduce_sum(tf.where(valid, weights * tf.square(td), 0.0)) / tf.maximum(
            tf.reduce_sum(tf.cast(valid, tf.float32)), 1.0
        )
        entries = tf.boolean_mask(states * self._num_actions + actions, valid)
        unique, segment = tf.unique(entries)
        pair_td = tf.boolean_mask(weights * td, valid)
        mean_td = tf.math.unsorted_segment_mean(pair_td, segment, tf.size(unique))
        # k pairs on one entry count as k sequential updates toward their mean target:
        # (1 - alpha)^k of the gap remains. Exact when their targets agree, never overshoots.
        count = tf.math.unsorted_segment_sum(tf.ones_like(pair_td), segment, tf.size(unique))
        step = 1.0 - tf.pow(1.0 - self._learning_rate, count)
        indices = tf.stack([unique // self._num_actions, unique % self._num_actions], axis=-1)
        self._q_table.scatter_nd_add(indices, step * mean_td)
        self.train_step_counter.assign_add(1)
        return tf_agent.LossInfo(loss=loss, extra=())


def check_observation_spec(observation_spec) -> int:  # noqa: ANN001
    """The number of observation dimensions of a one-dimensional float Box, else refused."""
    if (
        not isinstance(observation_spec, tf.TensorSpec)
        or not observation_spec.dtype.is_floating
        or observation_spec.shape.rank != 1
    ):
        raise UnsupportedSpaceError(
            "--agent=tabular_q indexes a Discrete or MultiDiscrete observation, or "
            "discretizes a one-dimensional float Box one, but the env's observation spec is "
            f"{describe_spec(observation_spec)}"
        )
    return int(observation_spec.shape[0])


def _discrete_states(cfg: TabularQConfig, spec: tf.TensorSpec) -> DiscreteStates:
    """The table's rows for a discrete observation: its values; the grid flags do not apply."""
    given = [f"--{name}" for name in GRID_FLAGS if getattr(cfg, name)]
    need(
        not given,
        f"{', '.join(given)} {'does' if len(given) == 1 else 'do'} not apply to a discrete "
        "observation: each of its values is a row of the table",
    )
    sizes = ranges(spec)[1]
    states = float(np.prod(sizes, dtype=np.float64))
    need(
        states <= MAX_DISCRETE_STATES,
        f"the observation has {states:,.0f} joint states (MultiDiscrete {sizes.tolist()}); "
        f"a table has at most {MAX_DISCRETE_STATES:,} rows",
    )
    return DiscreteStates(spec)


def _grid(cfg: TabularQConfig, context: AgentContext) -> ObservationGrid:
    dims = check_observation_spec(context.time_step_spec.observation)
    sizes, low, high = resolve_grid(cfg, context.env_id)
    need(
        len(sizes) == dims,
        f"--grid_sizes, --obs_low and --obs_high have {len(sizes)} values, but "
        f"{context.env_id}'s observations have {dims} dimensions",
    )
    return ObservationGrid(sizes, low, high)


def build_tabular_q(cfg: TabularQConfig, context: AgentContext) -> BuiltAgent:
    spec = context.time_step_spec.observation
    states = _discrete_states(cfg, spec) if is_discrete(spec) else _grid(cfg, context)
    entries = states.num_states * (
        int(context.action_spec.maximum) - int(context.action_spec.minimum) + 1
    )
    what = (
        f"--grid_sizes {list(states.sizes)} make"
        if isinstance(states, ObservationGrid)
        else f"the observation's {states.num_states:,} states make"
    )
    need(
        entries <= MAX_TABLE_ENTRIES,
        f"{what} a Q-table of {entries:,} entries; at most {MAX_TABLE_ENTRIES:,} "
        "(4 bytes each) are allowed",
    )
    epsilon = linear_epsilon(cfg, context)  # reads only the epsilon fields and the counters
    agent = TabularQAgent(
        context.time_step_spec,
        context.action_spec,
        states,
        learning_rate=cfg.learning_rate,
        gamma=cfg.gamma,
        initial_q=cfg.initial_q,
        epsilon=epsilon,
        train_step_counter=context.train_step,
    )
    agent.initialize()
    return BuiltAgent(
        agent=agent,
        collect_policy=agent.collect_policy,
        greedy_policy=agent.policy,
        initial_collect_policy=agent.collect_policy,
        hooks=ReplayHooks(train_sequence_length=2),
        scalars={"epsilon": epsilon},
    )


register_agent(
    AgentSpec(
        name="tabular_q",
        config_cls=TabularQConfig,
        loop="replay",
        actions=DISCRETE,
        build=build_tabular_q,
        summary="tabular Q-learning (Watkins 1989): a Discrete observation's values, or a "
        "grid over a Box one",
    )
)
