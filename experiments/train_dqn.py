"""Kept for old commands: `experiments/train.py`, whose --agent defaults to dqn.

python experiments/train_dqn.py --flagfile=experiments/configs/cartpole.cfg --seed=1
"""

from absl import app

import tfa_suite  # noqa: F401  (selects Keras 2 before TensorFlow is imported)
from tfa_suite.startup import import_tensorflow

import_tensorflow()  # before anything else loads it: its start-up noise filtered
from tfa_suite import flags as tfa_flags  # noqa: E402
from tfa_suite.cli import run_main, train_main  # noqa: E402

tfa_flags.define_flags()

if __name__ == "__main__":
    app.run(run_main(train_main))
