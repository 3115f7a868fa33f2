"""Tune an agent's hyperparameters with Optuna: TPE sampling, median pruning on the runs'
own evaluations, the value averaged over seeds, the study kept in SQLite so that it resumes.

    python experiments/tune.py --agent=ppo --env=CartPole-v1 --trials=20 --seeds=2 \\
        --num_envs=8 --num_env_steps=20000 --eval_interval=2000
    python experiments/train.py --flagfile=runs/tune/CartPole-v1-ppo/best.cfg

Any flag of experiments/train.py fixes its field (see `experiments/train.py --agent=NAME
--help`); the agent's declared search space (beside its config section) covers the rest,
changed with --search_space=FIELD=LOW:HIGH[:log] or --search_space=FIELD=A|B|C (repeat the
flag for more fields). The study lives in <study_root>/<study>/: study.db, the trials' run
dirs, best.cfg (a flagfile for train.py), optimization_history.png, param_importances.png
and summary.txt. Rerunning the same command continues it until --trials have finished;
Ctrl-C stops it at a checkpoint. Needs the analysis extra (`make install-analysis`).
"""

import importlib.util
import sys

from absl import app, flags

import tfa_suite  # noqa: F401  (selects Keras 2 before TensorFlow is imported)
from tfa_suite.startup import import_tensorflow

import_tensorflow()  # before anything else loads it: its start-up noise filtered
from tfa_suite import flags as tfa_flags  # noqa: E402
from tfa_suite.cli import run_main  # noqa: E402
from tfa_suite.errors import UserError  # noqa: E402

tfa_flags.define_flags()
flags.DEFINE_integer("trials", 20, "trials to finish (complete, pruned or failed), in all")
flags.DEFINE_integer("seeds", 1, "runs per trial, seeds --seed, --seed + 1, ...; value: their mean")
flags.DEFINE_string("study", "", "the study's name and folder; default <env>-<agent>")
flags.DEFINE_string("study_root", "runs/tune", "where the study's folder goes")
flags.DEFINE_multi_string(
    "search_space",
    [],
    "FIELD=LOW:HIGH, FIELD=LOW:HIGH:log or FIELD=A|B|C: adds the field to the agent's search "
    "space or replaces its range there",
)
flags.DEFINE_integer(
    "pruner_startup_trials", 5, "completed trials before the median rule prunes any"
)
flags.DEFINE_integer(
    "pruner_warmup_steps",
    None,
    "env steps before a run can be pruned; default: a third of --num_env_steps",
)
FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {' '.join(argv[1:])}; flags look like --name=value")
    if importlib.util.find_spec("optuna") is None:
        raise UserError("tune needs optuna, which is not installed; run make install-analysis")
    from tfa_suite.study.tune import TuneSettings, tune

    fields = tfa_flags.given_fields()
    fields.setdefault("agent", FLAGS.agent)
    fields.setdefault("env", FLAGS.env)
    summary = tune(
        TuneSettings(
            fields=fields,
            trials=FLAGS.trials,
            seeds=FLAGS.seeds,
            study=FLAGS.study,
            study_root=FLAGS.study_root,
            search_space=tuple(FLAGS.search_space),
            pruner_startup_trials=FLAGS.pruner_startup_trials,
            pruner_warmup_steps=FLAGS.pruner_warmup_steps,
        )
    )
    print(summary.text, flush=True)
    if summary.stopped_by_signal is not None:
        sys.exit(128 + summary.stopped_by_signal)


if __name__ == "__main__":
    app.run(run_main(main))
