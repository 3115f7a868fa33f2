"""Replay windows that run past a truncated episode's end or a seam: left out of the loss.

A replay sample for n-step targets is a window of n + 1 consecutive entries: rewards and
discounts of entries 0..n-1, bootstrapped from the observation of entry n. TF-Agents'
DQN-family losses sum the window's discounted rewards and bootstrap from its last step:

- a *termination* inside the window (next step LAST, discount 0) is cut correctly: the
  discount zeroes everything after it;
- a *truncation* (next step LAST, discount 1: a time limit, the episode did not end)
  before the window's last transition is not: the window then runs through the LAST ->
  FIRST boundary into the next episode, adding its rewards and bootstrapping from one of
  its states. (A truncation at the last transition is fine: the bootstrap observation is
  then the episode's final one, which is what a time limit needs.)

The exact target for such a window would stop at the truncation and bootstrap there, with
a shorter horizon; TF-Agents' losses have no per-sample horizon, so instead those windows
get weight 0, and their errors (prioritized replay's priorities) are 0. They are the
windows starting in the last n - 1 steps before a time limit.

The same goes for windows across a *seam*, where a replay row was cut and restarted (a
python-env run resumed, a Ray actor replaced): a mid-episode entry followed directly by
a new episode's FIRST one, with no LAST between. Every other window trains exactly as
before.
"""

from __future__ import annotations

import tensorflow as tf
from tf_agents.agents import tf_agent
from tf_agents.agents.dqn import dqn_agent
from tf_agents.trajectories import time_step as ts


def crosses_truncation(experience) -> tf.Tensor:  # noqa: ANN001
    """[B] bool: the window's n-step return runs past a truncated episode's end."""
    # Entries 0..n-2: a LAST next step there is followed by more of the window.
    inner = slice(None, -2)
    ended = tf.equal(experience.next_step_type[:, inner], ts.StepType.LAST)
    cut = ended & (experience.discount[:, inner] > 0)
    return tf.reduce_any(cut, axis=1)


def crosses_seam(experience) -> tf.Tensor:  # noqa: ANN001
    """[B] bool: the window steps from a mid-episode entry straight into a FIRST one.

    That is no transition at all: it is where a row of the replay was cut and restarted
    (a python-env run resumed from a checkpoint, a Ray actor replaced). Without a LAST
    entry between them, the stored 'transition' joins two unrelated states.
    """
    first = tf.equal(experience.step_type[:, 1:], ts.StepType.FIRST)
    after_boundary = tf.equal(experience.step_type[:, :-1], ts.StepType.LAST)
    return tf.reduce_any(first & ~after_boundary, axis=1)


def crosses_episode_end(experience) -> tf.Tensor:  # noqa: ANN001
    """[B] bool: left out of the loss, past a truncation or across a seam."""
    return crosses_truncation(experience) | crosses_seam(experience)


def kept(experience, weights) -> tuple[tf.Tensor, tf.Tensor]:  # noqa: ANN001
    """(keep, weights): keep is 1.0 per window, 0.0 for one across a truncation or a seam;
    weights are `weights` (or ones) times keep. Computed once per train step."""
    keep = tf.cast(~crosses_episode_end(experience), tf.float32)
    return keep, keep if weights is None else tf.cast(weights, tf.float32) * keep


class TruncationMasked:
    """Mixin for DqnAgent and DdqnAgent: their loss, without truncation-crossing windows."""

    def _loss(self, experience, *args, weights=None, **kwargs) -> tf_agent.LossInfo:  # noqa: ANN001, ANN002, ANN003
        keep, weights = kept(experience, weights)
        info = super()._loss(experience, *args, weights=weights, **kwargs)
        extra = info.extra
        if isinstance(extra, dqn_agent.DqnLossInfo):
            extra = extra._replace(td_error=extra.td_error * tf.cast(keep, extra.td_error.dtype))
        return tf_agent.LossInfo(info.loss, extra)


class DqnAgent(TruncationMasked, dqn_agent.DqnAgent):
    """TF-Agents' DqnAgent; n-step windows across a truncation are left out."""


class DdqnAgent(TruncationMasked, dqn_agent.DdqnAgent):
    """TF-Agents' DdqnAgent; n-step windows across a truncation are left out."""
