"""Compare a finance run's policy with fixed-allocation baselines on the same lives.

    python experiments/finance_report.py --root_dir=runs/finance-ddpg-seed0

Prints the table and writes finance_report.md, finance_report.json, net_worth_by_age.png
and shares_by_age.png into the run dir (see tfa_suite/finance/report.py): the policy, the
best fixed allocation, the best "keep N months of costs liquid" rule and the textbook
rules, all on the same held-out lives, each with its paired difference to the best rules.
"""

from absl import app, flags

import tfa_suite  # noqa: F401  (selects Keras 2 before TensorFlow is imported)
from tfa_suite.cli import run_main

flags.DEFINE_string("root_dir", None, "run dir of a --env=finance training run")
flags.DEFINE_integer("lives", 100, "seeded lives each policy plays (and the grid search uses)")
flags.DEFINE_float("grid_step", 0.1, "step of the fixed-allocation grid over the simplex")
flags.DEFINE_bool("overwrite", False, "replace an earlier report in the run dir")
flags.mark_flag_as_required("root_dir")
FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    from tfa_suite.errors import UserError
    from tfa_suite.finance.report import report

    if len(argv) > 1:
        raise UserError(f"unexpected arguments {' '.join(argv[1:])}")
    report(FLAGS.root_dir, FLAGS.lives, FLAGS.grid_step, FLAGS.overwrite)


if __name__ == "__main__":
    app.run(run_main(main))
