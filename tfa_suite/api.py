"""The Python API: the library face of the same entry point the binaries use.

    import tfa_suite
    result = tfa_suite.train(agent="dqn", env="CartPole-v1", seed=0, num_env_steps=20_000)
    print(result.policy.evaluate(episodes=10))
    policy = tfa_suite.load_policy(result.root_dir)

`train` builds the config the flags would build (any config field by its flag name; a
field the agent does not take is refused with the flags' one-line message, raised as a
`tfa_suite.errors.UserError`), runs `tfa_suite.run.train.train` and returns the figures,
the paths of what the run wrote and the exported policy, loaded. Calling it again on the
same root_dir resumes the run, as the binary does.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from tfa_suite import catalog
from tfa_suite.cli import quiet_library_logs
from tfa_suite.config import EVAL_SEED_OFFSET
from tfa_suite.flags import flagfile_fields
from tfa_suite.policy.handle import Evaluation, Policy, load_policy
from tfa_suite.run.outputs import TrainResult
from tfa_suite.run.reporting import read_metrics
from tfa_suite.run.run_dir import RunDir
from tfa_suite.startup import import_tensorflow

__all__ = [
    "EVAL_SEED_OFFSET",
    "Evaluation",
    "Policy",
    "RunResult",
    "load_policy",
    "make_config",
    "train",
]

# What a finished run leaves in its root dir, by the names RunResult.paths uses.
OUTPUTS = {
    "config": "config.json",
    "flags": "flags.txt",
    "metrics": "metrics.csv",
    "checkpoints": "checkpoints",
    "summaries": "summaries",
    "policy": "policy",
    "learning_curve": "learning_curve.png",
    "video": "video.mp4",
    "result": "result.json",
}


@dataclasses.dataclass
class RunResult:
    """A run's figures (`figures`), where it wrote its outputs, and its exported policy
    (None if the run was stopped by a signal before exporting)."""

    figures: TrainResult
    root_dir: str
    policy: Policy | None

    @property
    def paths(self) -> dict[str, str]:
        """Output name -> path, for the outputs that exist."""
        found = {name: os.path.join(self.root_dir, rel) for name, rel in OUTPUTS.items()}
        return {name: path for name, path in found.items() if os.path.exists(path)}

    def metrics(self) -> list[dict[str, float]]:
        """metrics.csv as rows of floats (NaN where a row has no value)."""
        return read_metrics(RunDir(self.root_dir).metrics)

    def __getattr__(self, name: str) -> Any:
        # The figures by name: result.env_steps, result.solved, result.final_eval_mean ...
        if name != "figures" and name in {f.name for f in dataclasses.fields(TrainResult)}:
            return getattr(self.figures, name)
        raise AttributeError(name)


def make_config(
    agent: str | None = None,
    env: str | None = None,
    seed: int | None = None,
    root_dir: str | os.PathLike | None = None,
    flagfile: str | os.PathLike | None = None,
    **fields: Any,
):  # noqa: ANN201
    """The validated config `train` runs: the flagfile's fields, then the arguments."""
    flat: dict[str, Any] = flagfile_fields(os.fspath(flagfile)) if flagfile else {}
    named = dict(agent=agent, env=env, seed=seed, root_dir=root_dir)
    flat.update({k: v for k, v in named.items() if v is not None})
    flat.update({k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()})
    if "root_dir" in flat:
        flat["root_dir"] = os.fspath(flat["root_dir"])
    return catalog.make_config(**flat)


def train(
    agent: str | None = None,
    env: str | None = None,
    seed: int | None = None,
    root_dir: str | os.PathLike | None = None,
    flagfile: str | os.PathLike | None = None,
    **fields: Any,
) -> RunResult:
    """Trains (or resumes) one run and returns its figures, paths and loaded policy.

    `agent` and `env` default to the flagfile's, else to dqn on CartPole-v1; `root_dir`
    to runs/<env>-<agent>-seed<seed>. Every other config field is a keyword argument
    named as its flag (`num_env_steps=20_000`, `fc_layers=[64, 64]`).
    """
    from tfa_suite.run.train import train as train_run

    import_tensorflow()
    quiet_library_logs()
    config = make_config(agent, env, seed, root_dir, flagfile, **fields)
    figures = train_run(config)
    done = figures.stopped_by_signal is None
    policy_dir = RunDir(figures.root_dir).policy
    policy = load_policy(policy_dir) if done and os.path.isdir(policy_dir) else None
    result = RunResult(figures, figures.root_dir, policy)
    print("outputs:", ", ".join(f"{name} {path}" for name, path in result.paths.items()))
    return result
