"""Hyperparameter tuning with Optuna, through the same training entry point as the binaries.

    python experiments/tune.py --agent=ppo --env=CartPole-v1 --trials=20 --seeds=2

- What is searched: the agent's `SEARCH_SPACE`, declared beside its config section and
  reached through `tfa_suite.catalog.search_space`, changed by `--search_space=FIELD=...`
  (`tfa_suite.study.search_space`). Any train flag fixes its field instead: it is not
  searched, and best.cfg keeps it.
- A trial trains one run per seed (--seed, --seed + 1, ...) with `tfa_suite.run.train`.
  A run's value is its mean greedy return over its evaluations: the area under its
  learning curve, which rewards learning fast and is steadier than one evaluation. A run
  that stopped on solving is credited its final score for the evaluations it skipped, so
  solving early never scores less than solving late. The trial's value is the mean over
  its seeds.
- The sampler is TPE, seeded by --seed and by the number of trials the study already
  holds: a resumed study does not draw its first trials' parameters again.
- The pruner is the median rule, fed by the runs' own evaluations as they happen
  (`on_evaluation`). At each evaluation of seed k it hears the trial's running value, the
  mean of the finished seeds' values and of seed k's evaluations so far, at step
  k * --num_env_steps + env steps (rounded down to the --eval_interval grid): every
  trial is compared with the others at the same
  seed and the same point of that seed's run. A pruned run stops with its checkpoint
  written (`train.py --flagfile=<its run dir>/flags.txt` resumes it), and the trial
  counts as pruned.
- The study lives in <study_root>/<study>/ (`tfa_suite.study.study_dir`): study.db
  (SQLite), trial_NNNN/seedS/ (the runs; their progress in trial_NNNN/train.log), and
  best.cfg, the plots and summary.txt, rewritten after every trial. Rerunning the same
  command continues the study: finished trials are kept, a trial that was running when
  the process died is marked failed and its parameters are tried again first, and trials
  are run until --trials have finished (complete, pruned, or failed on their own:
  diverged, or an invalid combination).
  A lock file keeps a second process off a study that one is running, which is what
  makes it safe to fail, at start, every trial still marked running (Optuna's heartbeat
  would fail them only after a grace period).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import statistics
import time
from typing import Any

import optuna
from optuna.trial import TrialState

from tfa_suite import catalog
from tfa_suite.config import RunConfig, TrainConfig, need, validate
from tfa_suite.errors import UserError
from tfa_suite.precision import graph_precision
from tfa_suite.run.outputs import TrainResult
from tfa_suite.run.train import TrainingDiverged, build, resolve_config, train
from tfa_suite.study.search_space import resolve_space, suggest
from tfa_suite.study.study_dir import (
    Plan,
    TuneSummary,
    best_trial,
    counts,
    locked,
    write_outputs,
)

# Run fields whose default a study changes unless they are given: no video of every run.
STUDY_RUN_DEFAULTS: dict[str, Any] = {"video_episodes": 0}
# Random trials before TPE models the results: a ~20-trial study spends most on the model.
TPE_STARTUP_TRIALS = 5


@dataclasses.dataclass(frozen=True)
class TuneSettings:
    """A study as the command line gives it."""

    fields: dict[str, Any]  # the train fields given (agent and env among them), fixed
    trials: int
    seeds: int = 1
    study: str = ""  # default: <env>-<agent>
    study_root: str = "runs/tune"
    search_space: tuple[str, ...] = ()  # FIELD=LOW:HIGH[:log] or FIELD=A|B|C
    pruner_startup_trials: int = 5
    pruner_warmup_steps: int | None = None  # default: a third of --num_env_steps


# --- the plan: every check, before anything is written --------------------------------------


def make_plan(settings: TuneSettings) -> Plan:
    """Checks the settings and builds the base run once (env, spaces), writing nothing."""
    need(settings.trials >= 1, f"--trials must be >= 1, not {settings.trials}")
    need(settings.seeds >= 1, f"--seeds must be >= 1, not {settings.seeds}")
    need(settings.pruner_startup_trials >= 0, "--pruner_startup_trials must be >= 0")
    fields = dict(settings.fields)
    agent = fields.setdefault("agent", RunConfig.agent)
    env = fields.setdefault("env", RunConfig.env)
    catalog.agent_spec(agent)  # refuses an unknown agent
    need(
        "root_dir" not in fields,
        "--root_dir is the study's to set (runs go to <study_root>/<study>/trial_NNNN/seedS); "
        "choose the folder with --study_root and --study",
    )
    name = settings.study or re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{env.split(':')[-1]}-{agent}")
    need(
        re.fullmatch(r"[A-Za-z0-9_.-]+", name) is not None and name not in (".", ".."),
        f"--study must be a folder name (letters, digits, _ . -), not {name!r}",
    )
    base = catalog.make_config(**{**STUDY_RUN_DEFAULTS, **fields})  # refuses foreign fields
    space = resolve_space(agent, settings.search_space, fields)
    validate(base)
    run = base.run
    need(run.eval_interval > 0, "--eval_interval must be > 0: trials are scored by evaluations")
    need(
        run.eval_interval <= run.num_env_steps,
        f"--eval_interval ({run.eval_interval}) must be <= --num_env_steps "
        f"({run.num_env_steps}): trials are scored by their evaluations",
    )
    warmup = settings.pruner_warmup_steps
    warmup = run.num_env_steps // 3 if warmup is None else warmup
    need(warmup >= 0, "--pruner_warmup_steps must be >= 0")
    with graph_precision(run.mixed_precision):  # the env and the agent fit: built, not run
        build(resolve_config(base)).loop.close()
    return Plan(
        name=name,
        dir=os.path.join(settings.study_root, name),
        trials=settings.trials,
        seeds=settings.seeds,
        seed=run.seed,
        fixed={k: v for k, v in fields.items() if k != "seed"},
        space=space,
        base=base,
        pruner=optuna.pruners.MedianPruner(settings.pruner_startup_trials, warmup),
    )


# --- the study: storage, lock, resume --------------------------------------------------------


def _check_same_study(study: optuna.Study, plan: Plan) -> None:
    """Stores a new study's identity; refuses to continue one started with other flags."""
    stored = study.user_attrs.get("identity")
    if stored is None:
        study.set_user_attr("identity", plan.identity())
        return
    now = plan.identity()
    changed = [key for key in {**stored, **now} if now.get(key) != stored.get(key)]
    if changed:
        detail = "; ".join(
            f"{key}: {stored.get(key, 'unset')} then, {now.get(key, 'unset')} now"
            for key in changed
        )
        raise UserError(
            f"study {plan.dir} was started with other settings ({detail}); rerun it with the "
            "same flags (only --trials and the pruner's may change), or choose a new --study"
        )


def _retry_interrupted(study: optuna.Study) -> list[int]:
    """Fails the trials left running by a process that died (the lock says none is alive)
    and queues their parameters to be tried first."""
    numbers = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
        study.tell(trial.number, state=TrialState.FAIL)
        numbers.append(trial.number)
    return numbers


def open_study(plan: Plan) -> optuna.Study:
    """Creates the study in plan.dir, or loads it to continue (same flags only)."""
    study = optuna.create_study(
        storage=f"sqlite:///{os.path.abspath(plan.path('db'))}",
        study_name=plan.name,
        direction="maximize",
        load_if_exists=True,
        pruner=plan.pruner,
    )
    _check_same_study(study, plan)
    retried = _retry_interrupted(study)
    if retried:
        listed = ", ".join(f"#{n}" for n in retried)
        print(f"trial {listed} was running when the study stopped: failed, and tried again first")
    study.sampler = optuna.samplers.TPESampler(
        n_startup_trials=TPE_STARTUP_TRIALS, seed=plan.seed + len(study.trials)
    )
    return study


# --- a trial ---------------------------------------------------------------------------------


def run_value(result: TrainResult, eval_interval: int, num_env_steps: int) -> float:
    """A run's value: its mean greedy return over its evaluations, a run stopped on
    solving credited its final score for each evaluation it skipped."""
    means = [e["mean"] for e in result.evaluations if e["source"] == "eval"]
    if result.solved_at_env_steps is not None:
        means += [result.final_eval_mean] * max(num_env_steps // eval_interval - len(means), 0)
    return statistics.fmean(means) if means else result.final_eval_mean


class PrunerFeed:
    """The `on_evaluation` of a trial's runs: reports its running value to the pruner at
    each evaluation and stops the run when the pruner says so."""

    def __init__(self, trial: optuna.Trial, num_env_steps: int, eval_interval: int):
        self.trial = trial
        self.num_env_steps = num_env_steps
        self.eval_interval = eval_interval
        self.seed_values: list[float] = []  # of the seeds run to their end
        self.evaluations: list[float] = []  # of the seed being run
        self.value = float("nan")  # the running value last reported

    def step(self, env_steps: int) -> int:
        """The pruner's step for an evaluation at `env_steps` of the current seed: on the
        grid of --eval_interval, since the median rule compares trials only at equal steps
        and an evaluation lands wherever the iteration that crossed the interval ended
        (2,483 env steps in one trial, 2,492 in another with other rollout sizes)."""
        on_grid = env_steps // self.eval_interval * self.eval_interval
        return len(self.seed_values) * self.num_env_steps + on_grid

    def next_seed(self, finished_value: float | None = None) -> None:
        if finished_value is not None:
            self.seed_values.append(finished_value)
        self.evaluations = []

    def __call__(self, env_steps: int, mean: float) -> str | None:
        self.evaluations.append(mean)
        values = [*self.seed_values, statistics.fmean(self.evaluations)]
        self.value = statistics.fmean(values)
        self.trial.report(self.value, self.step(env_steps))
        if self.trial.should_prune():
            return f"pruned: value {self.value:.1f} is below the median of earlier trials"
        return None


def trial_config(plan: Plan, number: int, params: dict[str, Any], k: int) -> TrainConfig:
    """Seed k's run of trial `number`; refuses (UserError) an invalid combination."""
    seed = plan.seed + k
    root = os.path.join(plan.dir, f"trial_{number:04d}", f"seed{seed}")
    values = {**STUDY_RUN_DEFAULTS, **plan.fixed, **params, "seed": seed, "root_dir": root}
    config = catalog.make_config(**values)
    validate(config)
    return config


@dataclasses.dataclass
class Outcome:
    """How a trial ended; RUNNING: stopped by a signal, left to be retried."""

    state: TrialState
    value: float
    note: str  # what the progress line adds: per-seed values, where it was pruned, why it failed
    signal: int | None = None


def _train_seeds(plan: Plan, trial: optuna.Trial, params: dict[str, Any]) -> Outcome:
    """Trains the trial's seeds one after the other, until one is pruned or fails.

    A combination the config refuses, or a run whose loss diverges, fails the trial (it
    counts toward --trials); any other error ends the study, the trial to be retried."""
    feed = PrunerFeed(trial, plan.base.run.num_env_steps, plan.base.run.eval_interval)
    for k in range(plan.seeds):
        try:
            config = trial_config(plan, trial.number, params, k)
        except UserError as e:
            return Outcome(TrialState.FAIL, float("nan"), f"failed: {e}")
        log = os.path.join(os.path.dirname(config.run.root_dir), "train.log")
        os.makedirs(os.path.dirname(log), exist_ok=True)
        try:
            with open(log, "a") as f, contextlib.redirect_stdout(f):
                print(f"--- seed {config.run.seed} ---", flush=True)
                result = train(config, on_evaluation=feed)
        except TrainingDiverged as e:
            return Outcome(TrialState.FAIL, float("nan"), f"failed: {e}")
        if result.stopped_by_signal is not None:
            return Outcome(TrialState.RUNNING, feed.value, "interrupted", result.stopped_by_signal)
        if result.stopped_early is not None:
            where = f"env step {result.env_steps:,} of seed {config.run.seed}"
            return Outcome(TrialState.PRUNED, feed.value, f"pruned at {where}")
        run = config.run
        feed.next_seed(run_value(result, run.eval_interval, run.num_env_steps))
    value = statistics.fmean(feed.seed_values)
    per_seed = ", ".join(f"{v:.1f}" for v in feed.seed_values)
    return Outcome(TrialState.COMPLETE, value, f"seeds: {per_seed}" if plan.seeds > 1 else "")


def _fmt(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).lower() if isinstance(value, bool) else str(value)


def run_trial(study: optuna.Study, plan: Plan) -> Outcome:
    """Asks for a trial, trains its seeds, tells the study; prints two progress lines."""
    index = counts(study)["finished"] + 1
    trial = study.ask()
    params = suggest(trial, plan.space)
    retry = trial.user_attrs.get("retry_of")
    label = f"trial {index}/{plan.trials} (#{trial.number}" + (
        f", retrying #{retry})" if retry is not None else ")"
    )
    print(f"{label}: {', '.join(f'{k}={_fmt(v)}' for k, v in params.items())}", flush=True)
    start = time.monotonic()
    outcome = _train_seeds(plan, trial, params)
    elapsed = time.monotonic() - start
    if outcome.state == TrialState.RUNNING:  # stopped by a signal: retried on the next start
        return outcome
    if outcome.state == TrialState.FAIL:
        trial.set_user_attr("failed", outcome.note)
        study.tell(trial, state=TrialState.FAIL)
        shown = outcome.note
    elif outcome.state == TrialState.PRUNED:
        study.tell(trial, state=TrialState.PRUNED)
        shown = f"{outcome.note}, value so far {outcome.value:.1f}"
    else:
        study.tell(trial, outcome.value)
        shown = f"value {outcome.value:.1f}" + (f" ({outcome.note})" if outcome.note else "")
    best = best_trial(study)
    best_text = f"; best {best.value:.1f} (#{best.number})" if best is not None else ""
    print(f"{label}: {shown} in {elapsed:.0f} s{best_text}", flush=True)
    return outcome


def tune(settings: TuneSettings) -> TuneSummary:
    """Runs (or continues) the study until --trials have finished; returns its summary.

    Every input error is a UserError raised before the study's folder is written."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress lines say it
    plan = make_plan(settings)
    os.makedirs(plan.dir, exist_ok=True)
    with locked(plan.dir):
        study = open_study(plan)
        print(
            f"study {plan.name} in {plan.dir}: {counts(study)['finished']} of {plan.trials} "
            f"trials finished; searching {', '.join(plan.space)}",
            flush=True,
        )
        summary = None
        while counts(study)["finished"] < plan.trials:
            outcome = run_trial(study, plan)
            summary = write_outputs(study, plan)  # after every trial: a stopped study has them
            if outcome.signal is not None:
                print(
                    "stopped by a signal, the trial's runs checkpointed; rerun the same command "
                    "to continue the study (this trial is tried again first)",
                    flush=True,
                )
                summary.stopped_by_signal = outcome.signal
                return summary
        return summary or write_outputs(study, plan)
