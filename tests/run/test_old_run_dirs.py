"""Run dirs written by an older tfa_suite still resume: config.json, flags.txt, checkpoint
keys and metrics.csv read the same.

tests/data/run_dirs_v7a33ef7/ holds two tiny finished runs (DQN on the replay loop and PPO
on the rollout loop, CartPole-v1, TF-native env, 200 env steps) written by the code at
commit 7a33ef7, before the package was split into layers. Each copy is resumed here with
a larger --num_env_steps, from its own flags.txt, as a user would.
"""

from __future__ import annotations

import csv
import json
import math
import pathlib
import shutil

import pytest

from tfa_suite.config import same_value
from tfa_suite.flags import config_from_flagfile
from tfa_suite.run.train import train

OLD_RUNS = pathlib.Path(__file__).resolve().parent.parent / "data" / "run_dirs_v7a33ef7"


def rows(root: pathlib.Path) -> list[dict[str, str]]:
    with open(root / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("agent", ["dqn", "ppo"])
def test_old_run_dir_resumes_and_trains_on(agent, tmp_path, capsys):
    root = tmp_path / agent
    shutil.copytree(OLD_RUNS / agent, root)
    before = json.loads((root / "config.json").read_text())
    old_rows = rows(root)
    old_result = json.loads((root / "result.json").read_text())
    config = config_from_flagfile(str(root / "flags.txt"), root_dir=str(root), num_env_steps=400)
    result = train(config)  # refuses a checkpoint whose saved values it cannot all restore
    out = capsys.readouterr().out
    assert f"resumed from {root}/checkpoints/ckpt-{old_result['env_steps']}" in out
    # The resume line says what became of the replay (the rollout loop keeps none).
    assert ("; replay buffer restored (" in out) == (agent == "dqn")
    assert result.resumed_from_env_steps == old_result["env_steps"]
    assert result.env_steps >= 400 and result.train_steps > old_result["train_steps"]
    # The old rows stay as they were (and gain the run's total time), the new ones follow.
    new_rows = rows(root)
    assert [{k: r[k] for k in old_rows[0]} for r in new_rows[: len(old_rows)]] == old_rows
    assert all(r["total_wall_seconds"] for r in new_rows)
    totals = [float(r["total_wall_seconds"]) for r in new_rows]
    assert totals == sorted(totals)
    assert int(new_rows[-1]["env_steps"]) == result.env_steps
    # The saved config is the same run: only the fields a resume may change differ. It is
    # strict JSON now (no bare NaN: an unset target is null), read back as NaN.
    text = (root / "config.json").read_text()
    json.loads(text, parse_constant=lambda name: pytest.fail(f"config.json has {name}"))
    after = {
        section: {k: math.nan if v is None else v for k, v in fields.items()}
        for section, fields in json.loads(text).items()
    }
    changed = {
        (section, name)
        for section, fields in after.items()
        for name, value in fields.items()
        if not same_value(before[section].get(name, value), value)
    }
    assert changed == {("run", "root_dir"), ("run", "num_env_steps")}
    assert after.keys() == before.keys()
    # A field added to a section since that version is saved with its default.
    sections = config.sections()
    for s in before:
        assert after[s].keys() >= before[s].keys()
        default = type(sections[s])()
        for name in after[s].keys() - before[s].keys():
            assert same_value(after[s][name], getattr(default, name)), (s, name)
