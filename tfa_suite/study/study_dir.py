"""The study directory: what a study writes, and the plan that names it.

<study_root>/<study>/
  study.db                  Optuna's storage (SQLite): every trial, its values and state
  trial_NNNN/seedS/         each trial's runs, ordinary run dirs (tfa_suite.run.run_dir)
  trial_NNNN/train.log      their progress output
  best.cfg                  the best trial as a flagfile for experiments/train.py
  optimization_history.png  value per trial, and the best so far
  param_importances.png     which fields mattered (PED-ANOVA over the completed trials)
  summary.txt               the best value and its fields' values, trials by outcome
  .lock                     held by the process running the study

Everything but study.db and the runs is rewritten after every trial, so a study that is
stopped still shows its best so far.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Iterator
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from tfa_suite.config import SearchParam, TrainConfig, strict_json
from tfa_suite.errors import UserError
from tfa_suite.study.search_space import decode, flag_text

FILES = {
    "db": "study.db",
    "best": "best.cfg",
    "history": "optimization_history.png",
    "importances": "param_importances.png",
    "summary": "summary.txt",
    "lock": ".lock",
}


@dataclasses.dataclass(frozen=True)
class Plan:
    """A checked study, before anything is written."""

    name: str
    dir: str
    trials: int
    seeds: int
    seed: int  # the first seed; trial runs use seed .. seed + seeds - 1
    fixed: dict[str, Any]  # the given fields, but the seed
    space: dict[str, SearchParam]  # the searched fields (given ones left out)
    base: TrainConfig  # the fixed fields, study defaults and the agent's own defaults
    pruner: optuna.pruners.BasePruner

    def path(self, name: str) -> str:
        return os.path.join(self.dir, FILES[name])

    def identity(self) -> dict[str, Any]:
        """What a rerun must repeat to continue this study, by what it says to the user
        (JSON, as the study stores it)."""
        data: dict[str, Any] = {f"--{name}": value for name, value in self.fixed.items()}
        data.update({"--seeds": self.seeds, "--seed": self.seed})
        data.update({f"the range of --{n}": repr(p) for n, p in self.space.items()})
        return json.loads(json.dumps(strict_json(data)))


@dataclasses.dataclass
class TuneSummary:
    """What a study has found so far, and summary.txt's text of it."""

    study_dir: str
    counts: dict[str, int]
    best_value: float | None
    best_params: dict[str, Any]
    best_trial: int | None
    stopped_by_signal: int | None = None
    text: str = ""


@contextlib.contextmanager
def locked(directory: str) -> Iterator[None]:
    """Holds the study's lock file; refuses a study another process is running."""
    import fcntl

    with open(os.path.join(directory, FILES["lock"]), "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"study {directory} is being run by another process; let it finish or stop it first"
            ) from None
        f.write(f"{os.getpid()}\n")
        f.flush()
        yield


def counts(study: optuna.Study) -> dict[str, int]:
    """Trials by outcome; `finished` counts toward --trials (failed on their own, not by
    an interruption, which is retried)."""
    trials = study.get_trials(deepcopy=False)
    n = {state: sum(t.state == state for t in trials) for state in TrialState}
    failed = sum(t.state == TrialState.FAIL and "failed" in t.user_attrs for t in trials)
    result = dict(
        complete=n[TrialState.COMPLETE],
        pruned=n[TrialState.PRUNED],
        failed=failed,
        interrupted=n[TrialState.FAIL] - failed,
    )
    result["finished"] = result["complete"] + result["pruned"] + failed
    return result


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:  # no complete trial yet
        return None


def best_flagfile(plan: Plan, best: FrozenTrial) -> str:
    """best.cfg: the agent, the env, the fields given, and the best trial's values."""
    lines = [
        f"# The best trial of study {plan.name} ({plan.dir}), written by experiments/tune.py:",
        f"# trial #{best.number}, value {best.value:.2f} (mean greedy return over each run's",
        f"# evaluations, mean over {plan.seeds} seed(s) from {plan.seed}). Train with",
        f"#   python experiments/train.py --flagfile={plan.path('best')} --seed=0",
    ]
    fixed = dict(plan.fixed)
    lines += [f"--agent={fixed.pop('agent')}", f"--env={fixed.pop('env')}"]
    if fixed:
        lines.append("# given to the study")
        lines += [f"--{k}={flag_text(v)}" for k, v in fixed.items()]
    lines.append(f"# tuned (trial #{best.number})")
    values = decode(plan.space, best.params)
    lines += [f"--{k}={flag_text(values[k])}" for k in plan.space if k in values]
    return "\n".join(lines) + "\n"


def write_plots(study: optuna.Study, plan: Plan) -> list[str]:
    """The optimization history and the parameter importances, as PNGs; returns the notes
    of any that could not be drawn yet (importances need finished trials)."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    if best_trial(study) is None:
        return [f"no {FILES['history']} or {FILES['importances']} yet: no trial has completed"]
    notes = []
    plots = {
        "history": optuna_plots.plot_optimization_history,
        "importances": optuna_plots.plot_param_importances,
    }
    for name, plot in plots.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna's matplotlib plots are "experimental"
            try:
                axes = plot(study)
            except (ValueError, RuntimeError, ZeroDivisionError) as e:
                notes.append(f"no {FILES[name]} yet: {e}")
                continue
        axes.figure.savefig(plan.path(name), dpi=110, bbox_inches="tight")
        plt.close(axes.figure)
    return notes


def summarize(study: optuna.Study, plan: Plan, notes: list[str]) -> TuneSummary:
    n = counts(study)
    best = best_trial(study)
    lines = [
        f"study {plan.name} in {plan.dir}: {plan.fixed['agent']} on {plan.fixed['env']}, "
        f"{plan.seeds} seed(s) per trial from {plan.seed}",
        f"trials: {n['finished']} of {plan.trials} finished ({n['complete']} complete, "
        f"{n['pruned']} pruned, {n['failed']} failed)"
        + (f"; {n['interrupted']} interrupted and retried" if n["interrupted"] else ""),
    ]
    params: dict[str, Any] = {}
    if best is None:
        lines.append("best: none yet (no trial has completed)")
    else:
        params = decode(plan.space, best.params)
        lines.append(
            f"best: trial #{best.number}, value {best.value:.2f} (mean greedy return over "
            f"the evaluations, mean over seeds); {FILES['best']}:"
        )
        lines += [f"  --{k}={flag_text(v)}" for k, v in params.items()]
    lines += notes
    return TuneSummary(
        study_dir=plan.dir,
        counts=n,
        best_value=best.value if best else None,
        best_params=params,
        best_trial=best.number if best else None,
        text="\n".join(lines),
    )


def write_outputs(study: optuna.Study, plan: Plan) -> TuneSummary:
    best = best_trial(study)
    if best is not None:
        with open(plan.path("best") + ".tmp", "w") as f:
            f.write(best_flagfile(plan, best))
        os.replace(plan.path("best") + ".tmp", plan.path("best"))
    summary = summarize(study, plan, write_plots(study, plan))
    with open(plan.path("summary"), "w") as f:
        f.write(summary.text + "\n")
    return summary
