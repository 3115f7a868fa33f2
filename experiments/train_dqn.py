"""Train a DQN agent on a gymnasium environment.

    python experiments/train_dqn.py --flagfile=experiments/configs/cartpole.cfg --seed=1

Every flag is a field of tfa_suite.config.TrainConfig; `--helpfull` lists them. Running
the same command again resumes the run in --root_dir.
"""

import sys

from absl import app

import tfa_suite  # noqa: F401  (selects Keras 2 before TensorFlow is imported)
from tfa_suite import flags as tfa_flags
from tfa_suite.cli import run_main

tfa_flags.define_flags()


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        from tfa_suite.errors import UserError

        raise UserError(f"unexpected arguments {' '.join(argv[1:])}; flags look like --name=value")
    from tfa_suite.training import train

    result = train(tfa_flags.config_from_flags())
    if result.stopped_by_signal is not None:
        # 128 + signal number, as shells report a process ended by that signal.
        sys.exit(128 + result.stopped_by_signal)


if __name__ == "__main__":
    app.run(run_main(main))
