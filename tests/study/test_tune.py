"""experiments/tune.py and tfa_suite.study: bad input is one line and writes nothing, the
declared search spaces fit their agents, a tiny real study writes its outputs and resumes,
and the pruner hears the runs' evaluations and stops a run it prunes at a checkpoint."""

from __future__ import annotations

import tfa_suite  # noqa: F401  isort: skip

import concurrent.futures
import contextlib
import dataclasses
import io
import os

import pytest

optuna = pytest.importorskip("optuna")

from tests.conftest import TINY_LOOP, TINY_RUN  # noqa: E402
from tfa_suite import catalog  # noqa: E402
from tfa_suite.config import Choice, FloatRange, IntRange, validate  # noqa: E402
from tfa_suite.errors import UserError  # noqa: E402
from tfa_suite.flags import config_from_flagfile  # noqa: E402
from tfa_suite.run.train import train  # noqa: E402
from tfa_suite.study.search_space import (  # noqa: E402
    check_space,
    decode,
    resolve_space,
    suggest,
)
from tfa_suite.study.study_dir import FILES, locked  # noqa: E402
from tfa_suite.study.tune import PrunerFeed, TuneSettings, tune  # noqa: E402

TUNE = "experiments/tune.py"

# --- bad input: one line, exit status 2, no study folder --------------------------------------

BAD_INPUT = {
    "unknown_agent": (["--agent=nope"], "unknown --agent 'nope'"),
    "search_space_field_of_another_agent": (
        ["--agent=ppo", "--search_space=fc_layers=64|128"],
        "--fc_layers does not apply to --agent=ppo",
    ),
    "fixed_flag_of_another_agent": (
        ["--agent=ppo", "--fc_layers=64"],
        "--fc_layers does not apply to --agent=ppo",
    ),
    "no_trials": (["--agent=dqn", "--trials=0"], "--trials must be >= 1, not 0"),
    "no_seeds": (["--agent=dqn", "--seeds=0"], "--seeds must be >= 1, not 0"),
}


@pytest.fixture(scope="module")
def bad_input(tmp_path_factory, binaries):
    """Runs every case of BAD_INPUT as its own process, two at a time (a TensorFlow
    import each); returns name -> (outcome, the --study_root it was given)."""
    tmp = tmp_path_factory.mktemp("bad_input")

    def run(name: str):
        root = tmp / name
        args, _ = BAD_INPUT[name]
        return binaries.run(TUNE, *args, f"--study_root={root}", "--study=s"), root

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(BAD_INPUT, pool.map(run, BAD_INPUT)))


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_one_line_and_writes_no_study(bad_input, case):
    outcome, root = bad_input[case]
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    assert outcome.returncode == 2, outcome.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), outcome.stderr
    assert BAD_INPUT[case][1] in lines[0]
    assert "Traceback" not in outcome.stderr + outcome.stdout
    assert not root.exists()


# --- the declared search spaces --------------------------------------------------------------

DECLARING = [agent for agent in catalog.agent_names() if catalog.search_space(agent)]


def test_the_required_agents_declare_a_search_space():
    assert {"dqn", "ppo", "sac"} <= set(DECLARING)


def _corners(space):
    """Each range's ends and each choice's options, one field at a time, then every field
    at its low end and every field at its high end."""
    ends = {
        name: (p.options if isinstance(p, Choice) else (p.low, p.high)) for name, p in space.items()
    }
    for name, values in ends.items():
        for value in values:
            yield {name: value}
    yield {name: values[0] for name, values in ends.items()}
    yield {name: values[-1] for name, values in ends.items()}


@pytest.mark.parametrize("agent", DECLARING)
def test_a_declared_search_space_names_only_fields_its_agent_takes(agent):
    space = catalog.search_space(agent)
    fields = {
        f.name: f
        for cls in catalog.section_classes(agent).values()
        for f in dataclasses.fields(cls)
    }
    assert set(space) <= set(fields) - {"agent", "env", "seed", "root_dir"}
    check_space(agent, space)  # and draws values of each field's own type
    # Every end of every range is a value the agent's config accepts.
    for values in _corners(space):
        validate(catalog.make_config(agent=agent, **values))


@pytest.mark.parametrize("num_envs", [1, 3, 8])
def test_every_rollout_and_minibatch_that_ppo_draws_fits_any_number_of_envs(num_envs):
    space = catalog.search_space("ppo")
    refused, accepted = [], 0
    for rollout_steps in space["rollout_steps"].options:
        for minibatch_size in space["minibatch_size"].options:
            values = dict(rollout_steps=rollout_steps, minibatch_size=minibatch_size)
            try:
                validate(catalog.make_config(agent="ppo", num_envs=num_envs, **values))
                accepted += 1
            except UserError as e:
                refused.append((values, str(e)))
    assert refused == []
    assert accepted == len(space["rollout_steps"].options) * len(space["minibatch_size"].options)


def test_search_space_flags_add_or_replace_ranges_and_given_fields_are_not_searched():
    overrides = ("learning_rate=1e-4:1e-2:log", "fc_layers=64|64,64", "dueling=true|false")
    space = resolve_space("dqn", overrides, fixed={"agent": "dqn", "gamma": 0.9})
    assert space["learning_rate"] == FloatRange(1e-4, 1e-2, log=True)
    assert space["fc_layers"] == Choice(([64], [64, 64]))
    assert space["dueling"] == Choice((True, False))
    assert "gamma" not in space and "n_step" in space
    with pytest.raises(UserError, match="--search_space=gamma=x:1: "):
        resolve_space("dqn", ("gamma=x:1",), {})
    with pytest.raises(UserError, match="nothing to search"):
        resolve_space("tabular_q", (), dict.fromkeys(catalog.search_space("tabular_q"), 0.5))


def test_the_space_check_refuses_what_it_looks_for():
    with pytest.raises(UserError, match="--fc_layers does not apply to --agent=ppo"):
        check_space("ppo", {"fc_layers": Choice(([64], [128]))})
    with pytest.raises(UserError, match="--gamma takes float values"):
        check_space("dqn", {"gamma": IntRange(0, 1)})
    with pytest.raises(UserError, match="seed cannot be searched"):
        check_space("dqn", {"seed": IntRange(0, 9)})
    check_space("dqn", {"gamma": FloatRange(0.9, 0.99)})


# --- the pruner ------------------------------------------------------------------------------


def test_the_feed_reports_running_values_and_the_median_rule_prunes_a_worse_trial():
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.MedianPruner(1, n_warmup_steps=0)
    )
    # Two seeds of 1,000 env steps, evaluated every 100: seed 1's evaluation at its env
    # step 130 is on the grid at 100, so step 1,100.
    good = study.ask()
    feed = PrunerFeed(good, num_env_steps=1_000, eval_interval=100)
    assert feed(100, 100.0) is None and feed(200, 300.0) is None  # no trial to compare with
    feed.next_seed(200.0)
    assert feed(130, 400.0) is None
    # The running value: the mean of seed 0's 200 and seed 1's evaluations so far (400).
    study.tell(good, 300.0)
    assert study.trials[0].intermediate_values == {100: 100.0, 200: 200.0, 1_100: 300.0}

    # Other rollout sizes put the first evaluation at 112 env steps, not 100: the same
    # point of the run, so it is compared with the first trial's there and pruned. (On
    # raw env steps the median rule found no trial to compare with and pruned nothing.)
    worse = study.ask()
    reason = PrunerFeed(worse, num_env_steps=1_000, eval_interval=100)(112, 10.0)
    assert reason is not None and "pruned" in reason
    better = study.ask()
    assert PrunerFeed(better, num_env_steps=1_000, eval_interval=100)(104, 150.0) is None


def test_a_run_told_to_stop_at_an_evaluation_stops_there_and_resumes(tmp_path, tiny_config):
    root = tmp_path / "run"
    heard = []

    def stop_at_first(env_steps, mean):
        heard.append((env_steps, mean))
        return "pruned: told to"

    config = tiny_config(root, agent="tabular_q", eval_interval=100)
    stopped = train(config, on_evaluation=stop_at_first)
    assert len(heard) == 1
    steps, mean = heard[0]
    assert stopped.stopped_early == "pruned: told to" and stopped.stopped_by_signal is None
    assert 100 <= stopped.env_steps == steps < 400
    assert stopped.evaluations[-1]["mean"] == mean
    assert not (root / "result.json").exists() and not (root / "policy").exists()
    assert any(name.startswith(f"ckpt-{steps}.") for name in os.listdir(root / "checkpoints"))

    finished = train(config)  # the same command, no hook: resumes where it stopped
    assert finished.resumed_from_env_steps == steps
    assert finished.env_steps >= 400 and finished.stopped_early is None
    assert (root / "result.json").exists()


# --- a tiny real study -----------------------------------------------------------------------

# tabular_q on the compiled CartPole: 400 env steps per run, an evaluation every 100.
TINY_STUDY = {
    "agent": "tabular_q",
    "env": "CartPole-v1",
    "backend": "graph",
    **TINY_RUN,
    **TINY_LOOP,
    "eval_interval": 100,
}


def _settings(root, trials: int, **changes) -> TuneSettings:
    return TuneSettings(
        fields=dict(TINY_STUDY),
        trials=trials,
        study="tiny",
        study_root=str(root),
        pruner_startup_trials=1,
        **changes,
    )


def _load(study_dir):
    storage = f"sqlite:///{study_dir / FILES['db']}"
    return optuna.load_study(study_name="tiny", storage=storage)


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    """Two trials; then a trial left RUNNING, as a process killed mid-trial leaves it;
    then the same study rerun with --trials=3."""
    root = tmp_path_factory.mktemp("tune")
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown):
        first = tune(_settings(root, trials=2))
    study_dir = root / "tiny"
    before = {t.number: t for t in _load(study_dir).trials}
    killed = _load(study_dir).ask()
    killed_params = suggest(killed, catalog.search_space("tabular_q"))
    resumed = tune(_settings(root, trials=3))
    return dict(
        root=root,
        dir=study_dir,
        first=first,
        shown=shown.getvalue(),
        before=before,
        killed=(killed.number, killed_params),
        resumed=resumed,
        after=_load(study_dir).trials,
    )


def test_a_tiny_study_writes_its_db_runs_best_cfg_and_plots(tiny_study):
    first, study_dir = tiny_study["first"], tiny_study["dir"]
    assert first.counts["finished"] == 2
    assert first.counts["complete"] + first.counts["pruned"] == 2
    assert first.best_value is not None and first.best_trial is not None
    for name in ("db", "best", "history", "importances", "summary"):
        assert (study_dir / FILES[name]).is_file(), name
    assert (study_dir / "trial_0000" / "seed0" / "config.json").is_file()
    assert "trial 1/2 (#0): learning_rate=" in tiny_study["shown"]
    assert "trial 2/2 (#1): " in tiny_study["shown"]
    assert "best: trial #" in (study_dir / FILES["summary"]).read_text()
    # The runs' own evaluations reached the pruner, at their env steps.
    reported = tiny_study["before"][0].intermediate_values
    assert reported and all(100 <= step <= 500 for step in reported)


def test_rerunning_a_study_continues_it_and_retries_the_killed_trial(tiny_study):
    resumed, after = tiny_study["resumed"], tiny_study["after"]
    assert resumed.counts["finished"] == 3 and resumed.counts["interrupted"] == 1
    for number, trial in tiny_study["before"].items():  # kept as they were
        assert after[number].state == trial.state
        assert after[number].params == trial.params and after[number].values == trial.values
    number, params = tiny_study["killed"]
    assert after[number].state == optuna.trial.TrialState.FAIL
    retry = [t for t in after if t.user_attrs.get("retry_of") == number]
    assert len(retry) == 1 and retry[0].state != optuna.trial.TrialState.FAIL
    space = catalog.search_space("tabular_q")
    assert decode(space, retry[0].params) == params


def test_the_best_cfg_is_a_flagfile_of_the_best_trial(tiny_study):
    summary = tiny_study["resumed"]
    config = config_from_flagfile(str(tiny_study["dir"] / FILES["best"]))
    validate(config)
    assert config.run.agent == "tabular_q" and config.run.env == "CartPole-v1"
    assert config.run.num_env_steps == 400 and config.run.eval_interval == 100  # as given
    assert config.run.root_dir == "" and config.run.seed == 0  # the user's to choose
    flat = config.flat()
    assert summary.best_params and all(flat[k] == v for k, v in summary.best_params.items())


def test_a_study_is_continued_only_with_its_own_settings(tiny_study):
    with pytest.raises(UserError, match="other settings .--seeds: 1 then, 2 now."):
        tune(_settings(tiny_study["root"], trials=4, seeds=2))
    assert len(_load(tiny_study["dir"]).trials) == len(tiny_study["after"])


def test_a_study_one_process_runs_is_refused_to_another(tmp_path):
    with locked(str(tmp_path)):
        with pytest.raises(UserError, match="being run by another process"):
            with locked(str(tmp_path)):
                pass
    with locked(str(tmp_path)):  # free again once the first has let go
        pass
