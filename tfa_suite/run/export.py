"""Export a greedy TF-Agents policy as a SavedModel that `tfa_suite.policy` loads alone."""

from __future__ import annotations

import json
import os

from tfa_suite.envs.loading import EnvSpec
from tfa_suite.policy.saved import ENV_FILE


def export_policy(policy, path: str, spec: EnvSpec, train_step) -> None:  # noqa: ANN001
    """Saves `policy` (a TF-Agents TFPolicy) to `path`, replacing an older export there.

    The new export is written beside the old one and swapped in by rename, so a crash
    mid-export never leaves the run without a loadable policy.
    """
    import shutil

    from tf_agents.policies import policy_saver

    tmp = path + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    policy_saver.PolicySaver(policy, batch_size=None, train_step=train_step).save(tmp)
    with open(os.path.join(tmp, ENV_FILE), "w") as f:
        json.dump(spec.to_json(), f, indent=2)
    old = path + ".old"
    if os.path.exists(path):
        shutil.rmtree(old, ignore_errors=True)
        os.rename(path, old)
    os.rename(tmp, path)
    shutil.rmtree(old, ignore_errors=True)
