"""Train any agent of the suite on a gymnasium environment (or a TF-native one).

    python experiments/train.py --agent=sac --env=Pendulum-v1
    python experiments/train.py --flagfile=experiments/configs/pendulum_td3.cfg --seed=1

Every flag is a field of a config section (the run's, the agent's loop's or the agent's
own); `--agent=NAME --help` lists that agent's by section (`--helpfull`: every flag of
every agent, absl's too), and a flag the chosen agent does not take is refused.
Running the same command again resumes the run in --root_dir.
"""

import sys

from absl import app

import tfa_suite  # noqa: F401  (selects Keras 2 before TensorFlow is imported)
from tfa_suite.startup import import_tensorflow

import_tensorflow()  # before anything else loads it: its start-up noise filtered
from tfa_suite import flags as tfa_flags  # noqa: E402
from tfa_suite.cli import run_main, train_main  # noqa: E402

tfa_flags.define_flags()

if __name__ == "__main__":
    # --help shows the chosen agent's sections (absl's own would list only this file's).
    help_text = run_main(lambda argv: tfa_flags.help_requested(argv))(sys.argv)
    if help_text is not None:
        print((__doc__ or "").strip() + "\n\n" + help_text)
        sys.exit(0)
    app.run(run_main(train_main))
