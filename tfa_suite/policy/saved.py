"""Load an exported greedy policy with TensorFlow alone.

An export (`tfa_suite.run.export`) holds TF-Agents' PolicySaver output plus `env.json`,
the EnvSpec the policy was trained on, so `experiments/evaluate.py` can rebuild the
environment. Loading needs neither TF-Agents nor the training code: it calls the
SavedModel's `action` signature directly.
"""

from __future__ import annotations

import json
import os

import numpy as np

from tfa_suite.envs.loading import EnvSpec
from tfa_suite.errors import UserError

ENV_FILE = "env.json"


class SavedPolicy:
    """A greedy policy loaded from an export, called on a batch of observations."""

    def __init__(self, path: str):
        import tensorflow as tf

        # The export's action distribution is a TF Probability composite tensor; loading
        # needs its type spec registered, which importing TF Probability does.
        import tensorflow_probability  # noqa: F401

        if not os.path.isdir(path):
            raise UserError(f"policy directory {path} does not exist")
        env_file = os.path.join(path, ENV_FILE)
        if not os.path.isfile(os.path.join(path, "saved_model.pb")) or not os.path.isfile(env_file):
            raise UserError(
                f"{path} is not an exported tfa_suite policy (no saved_model.pb or {ENV_FILE}); "
                "pass <root_dir>/policy of a finished run"
            )
        self.env_file = env_file
        try:
            with open(env_file) as f:
                self.env_spec = EnvSpec.from_json(json.load(f))
            self._model = tf.saved_model.load(path)
            self._action = self._model.signatures["action"]
        except (OSError, ValueError, KeyError, TypeError, tf.errors.OpError) as e:
            first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UserError(
                f"policy directory {path} is corrupt or unreadable: {first_line}"
            ) from None
        inputs = self._action.structured_input_signature[1]
        self._obs_key = next(k for k in inputs if k.endswith("observation"))
        self._obs_dtype = inputs[self._obs_key].dtype.as_numpy_dtype
        # One observation's shape: the signature's, without its batch dimension.
        self.observation_shape = tuple(inputs[self._obs_key].shape.as_list()[1:])
        self._keys = {
            name: key
            for key in inputs
            for name in ("step_type", "reward", "discount")
            if key.endswith(name)
        }
        self._tf = tf

    def env_error(self, error: UserError) -> UserError:
        """`error` from building the export's environment, naming env.json (where the env
        comes from here) instead of a --env flag that the caller may not have."""
        flag = f"--env={self.env_spec.env}"
        text = str(error)
        if text.startswith(flag):
            text = f"{self.env_file} names env {self.env_spec.env!r}" + text[len(flag) :]
        return UserError(text)

    @property
    def train_step(self) -> int:
        return int(self._model.get_train_step().numpy())

    def __call__(self, observations: np.ndarray) -> np.ndarray:
        tf = self._tf
        n = observations.shape[0]
        outputs = self._action(
            **{
                self._obs_key: tf.constant(np.asarray(observations, dtype=self._obs_dtype)),
                self._keys["step_type"]: tf.ones([n], tf.int32),
                self._keys["reward"]: tf.zeros([n], tf.float32),
                self._keys["discount"]: tf.ones([n], tf.float32),
            }
        )
        return outputs["action"].numpy()
