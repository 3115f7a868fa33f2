"""An export loads and acts in a process that imports only TensorFlow and TensorFlow
Probability, with the calling convention the README gives."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

EXPORTS = pathlib.Path(__file__).resolve().parents[1] / "data" / "run_dirs_v7a33ef7"

CODE = """
import sys
import numpy as np
import tensorflow as tf, tensorflow_probability  # noqa: F401
action = tf.saved_model.load(sys.argv[1]).signatures["action"]
n = 3
out = action(arg_0_observation=tf.zeros([n, 4]), arg_0_step_type=tf.ones([n], tf.int32),
             arg_0_reward=tf.zeros([n]), arg_0_discount=tf.ones([n]))
actions = out["action"].numpy()
assert actions.shape == (n,) and set(actions.tolist()) <= {0, 1}, actions
assert not [m for m in sys.modules if m.startswith(("tf_agents", "tfa_suite"))]
print("ok")
"""

WITHOUT_TFP = """
import sys
import tensorflow as tf
tf.saved_model.load(sys.argv[1]).signatures["action"]
"""


@pytest.mark.parametrize("agent", ["dqn", "ppo"])
def test_an_export_acts_with_tensorflow_and_tfp_alone(agent):
    path = str(EXPORTS / agent / "policy")
    proc = subprocess.run(
        [sys.executable, "-c", CODE, path], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-2000:]


def test_without_tfp_the_export_does_not_load():
    # Why the README says to import tensorflow_probability first.
    path = str(EXPORTS / "ppo" / "policy")
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_TFP, path], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0


def test_an_unimportable_env_in_env_json_is_named_as_env_json(tmp_path):
    import json
    import shutil

    from tfa_suite.errors import UserError
    from tfa_suite.policy.handle import load_policy

    policy_dir = tmp_path / "policy"
    shutil.copytree(EXPORTS / "dqn" / "policy", policy_dir)
    (policy_dir / "env.json").write_text(json.dumps({"env": "no_such_module_xyz.envs:MyEnv"}))
    with pytest.raises(UserError) as info:
        load_policy(policy_dir).evaluate(episodes=1)
    message = str(info.value)
    assert message.startswith(
        f"{policy_dir / 'env.json'} names env 'no_such_module_xyz.envs:MyEnv'"
    )
    assert "cannot import module 'no_such_module_xyz.envs'" in message
    assert "--env" not in message  # evaluate.py has no --env flag to point at
