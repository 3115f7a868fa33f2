"""An exported policy as a Python object: act on an observation, score it, film it.

`tfa_suite.load_policy(path)` returns one. Like `experiments/evaluate.py`, it needs only
TensorFlow (with TensorFlow Probability, whose types the export's signatures use),
gymnasium and the environment: no TF-Agents and no training code.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from tfa_suite.errors import UserError
from tfa_suite.policy.episodes import (
    EpisodeStats,
    VideoUnavailable,
    record_video,
    run_episodes,
)
from tfa_suite.policy.saved import SavedPolicy


@dataclasses.dataclass
class Evaluation(EpisodeStats):
    """Greedy returns of whole episodes (`EpisodeStats`: returns, lengths, cut, mean, std);
    episode i was reset with `seed + i`."""

    seed: int = dataclasses.field(default=0, kw_only=True)

    def __str__(self) -> str:
        return f"return {self.mean:.1f} ± {self.std:.1f} over {len(self.returns)} episodes"


class Policy:
    """The greedy policy exported to `path` (`<root_dir>/policy` of a run)."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self._saved = SavedPolicy(self.path)
        self.env_spec = self._saved.env_spec

    @property
    def train_step(self) -> int:
        """The gradient steps the policy was trained for."""
        return self._saved.train_step

    def action(self, observation: np.ndarray) -> np.ndarray:
        """The greedy action for one observation, or a batch of actions for a batch."""
        obs = np.asarray(observation)
        shape = self._saved.observation_shape
        if obs.shape == shape:
            return self._saved(obs[None])[0]
        if obs.shape[1:] == shape:
            return self._saved(obs)
        raise UserError(
            f"observation of shape {obs.shape} does not fit the policy's "
            f"{self._saved.observation_shape} (one observation, or a batch of them)"
        )

    def __call__(self, observations: np.ndarray) -> np.ndarray:
        return self._saved(observations)

    def evaluate(
        self,
        episodes: int = 10,
        seed: int = 0,
        sticky_actions: float = 0.0,
        max_episode_steps: int = 27_000,
    ) -> Evaluation:
        """Plays `episodes` whole greedy episodes on fresh environments and scores them."""
        if episodes < 1:
            raise UserError(f"episodes must be >= 1, not {episodes}")
        try:
            stats = run_episodes(
                self._saved, self.env_spec, episodes, seed=seed, max_steps=max_episode_steps,
                sticky_actions=sticky_actions,
            )  # fmt: skip
        except UserError as e:
            raise self._saved.env_error(e) from None
        return Evaluation(stats.returns, stats.lengths, stats.cut, seed=seed)

    def video(
        self,
        path: str | os.PathLike,
        episodes: int = 1,
        seed: int = 0,
        overwrite: bool = False,
        sticky_actions: float = 0.0,
    ) -> str:
        """Films `episodes` greedy episodes to an MP4 at `path`; returns the path."""
        path = os.fspath(path)
        if not path.lower().endswith(".mp4"):
            raise UserError(f"video path {path} must name a .mp4 file")
        if os.path.exists(path) and not overwrite:
            raise UserError(f"{path} exists; pass overwrite=True to replace it")
        try:
            record_video(
                self._saved, self.env_spec, path, episodes, seed=seed, sticky_actions=sticky_actions
            )
        except VideoUnavailable as e:
            raise UserError(f"no video: {e}") from None
        except UserError as e:
            raise self._saved.env_error(e) from None
        return path

    def __repr__(self) -> str:
        return f"Policy({self.path!r}, env={self.env_spec.env!r})"


def load_policy(path: str | os.PathLike) -> Policy:
    """Loads an exported policy (`<root_dir>/policy`, or a run's root dir)."""
    path = os.fspath(path)
    if os.path.isdir(os.path.join(path, "policy")) and not os.path.isfile(
        os.path.join(path, "saved_model.pb")
    ):
        path = os.path.join(path, "policy")
    return Policy(path)
