"""Train any agent of the suite on a gymnasium environment (or a TF-native one).

    python experiments/train.py --agent=sac --env=Pendulum-v1
    python experiments/train.py --flagfile=experiments/configs/pendulum_td3.cfg --seed=1

Every flag is a field of a config section (the run's, the agent's loop's or the agent's
own); `--helpfull` lists them, and a flag the chosen agent does not take is refused.
Running the same command again resumes the run in --root_dir.
"""

from absl import app

import tfa_suite  # noqa: F401  (selects Keras 2 before TensorFlow is imported)
from tfa_suite import flags as tfa_flags
from tfa_suite.cli import run_main, train_main

tfa_flags.define_flags()

if __name__ == "__main__":
    app.run(run_main(train_main))
