"""Aggregate finished runs over seeds: median and IQM with 95% stratified-bootstrap
confidence intervals, the probability of improvement between agents on the same env, and
the sample-efficiency curve (rliable, Agarwal et al. 2021).

    python experiments/aggregate.py runs/results/cartpole-dqn-seed* --out=runs/aggregate

Reads each run dir's config.json, result.json and metrics.csv only; writes aggregate.md,
aggregate.json, interval_estimates.png and sample_efficiency.png to --out. Needs the
analysis extra (`make install-analysis`).
"""

from absl import app, flags

import tfa_suite  # noqa: F401  (selects Keras 2 before TensorFlow is imported)
from tfa_suite.cli import run_main

flags.DEFINE_string("out", "", "directory for the tables and plots (created if missing)")
flags.DEFINE_bool("overwrite", False, "replace an earlier aggregate in --out")
flags.DEFINE_integer("reps", 2000, "bootstrap resamples per interval (rliable's paper: 50,000)")
FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    from tfa_suite.errors import UserError

    if FLAGS.reps < 100:
        raise UserError(f"--reps={FLAGS.reps}: a 95% interval needs at least 100 resamples")
    if not FLAGS.out:
        raise UserError("--out is required: the directory for the tables and plots")
    import importlib.util

    if importlib.util.find_spec("rliable") is None:
        raise UserError(
            "aggregate needs rliable, which is not installed; run make install-analysis"
        )
    from tfa_suite.study.aggregate import aggregate, markdown

    summary = aggregate(argv[1:], FLAGS.out, overwrite=FLAGS.overwrite, reps=FLAGS.reps)
    print(markdown(summary))
    print(f"wrote {FLAGS.out}/aggregate.md, aggregate.json, interval_estimates.png, "
          "sample_efficiency.png")  # fmt: skip


if __name__ == "__main__":
    app.run(run_main(main))
