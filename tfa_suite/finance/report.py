"""Score a trained finance policy against the rules a person would use, on the same lives.

Every policy plays the same `lives` seeded lives (seeds REPORT_SEED, REPORT_SEED + 1,
...), so the comparison is paired: luck in markets, raises and job losses is shared,
and the standard error of a difference is far smaller than that of either mean. The
baselines:

- uniform random weights each month;
- "mortgage first": everything to extra mortgage payments while a loan is left, then
  everything to tax-advantaged saving (contributions past the cap go to taxable);
- the course's fixed [0.5, 0.5, 0.5, 0.5] (equal shares);
- the best fixed allocation on a grid over the simplex of the four shares. It is chosen
  on a separate set of lives (seeds SELECTION_SEED, ...), so its reported score is not
  inflated by picking the luckiest allocation for the reported lives.

The score is a life's gain in real net worth (age-18 dollars) from 18 to 80, in $M: the
sum of the env's rewards at the default reward_scale.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
from collections.abc import Callable

import numpy as np

from tfa_suite.errors import UserError
from tfa_suite.finance.params import (
    ACTION_NAMES,
    MONTHS,
    START_AGE,
    FinanceParams,
    normalize_weights,
)
from tfa_suite.finance.sim import FinanceSim

# Life seeds of the report and of the grid search. Training's first lives are seed + i
# and later ones are drawn from [0, 2^31), so each training life has a ~1e-7 chance of
# being one of these 200 (~1e-4 per thousand lives); a shared life would bias the score
# by one life in a hundred at most.
REPORT_SEED = 50_000_000
SELECTION_SEED = 60_000_000
REPORT_FILES = (
    "finance_report.md",
    "finance_report.json",
    "net_worth_by_age.png",
    "shares_by_age.png",
)

# Maps the batch's observations (and the simulation, for rules that read its state
# directly) to a batch of four action weights.
Policy = Callable[[np.ndarray, FinanceSim], np.ndarray]


@dataclasses.dataclass
class Outcome:
    """How one policy fared on a set of lives."""

    name: str
    real_net_worth: np.ndarray  # [lives, MONTHS + 1], age-18 dollars, from 18 to 80
    foreclosed: np.ndarray  # [lives] bool
    shares: np.ndarray | None = None  # [MONTHS, 4] the mean shares the policy chose

    @property
    def gain(self) -> np.ndarray:
        """Each life's real net-worth gain from 18 to 80, in $M."""
        return (self.real_net_worth[:, -1] - self.real_net_worth[:, 0]) / 1e6


def simulate(
    policy: Policy, params: FinanceParams, seeds: np.ndarray, name: str, every: int = 1
) -> Outcome:
    """Plays `policy` on the lives `seeds`, recording real net worth every month.

    The policy decides every `every` months and its weights hold in between, as in an
    environment with `decision_months` (a learned policy plays as it was trained).
    """
    sim = FinanceSim(params)
    obs = sim.reset(seeds)
    path, shares = [sim.real_net_worth()], []
    actions = None
    while not sim.done:
        if sim.month % every == 0:
            actions = policy(obs, sim)
        shares.append(normalize_weights(actions, params.weight_floor).mean(axis=0))
        obs, _, _ = sim.step(actions)
        path.append(sim.real_net_worth())
    return Outcome(name, np.stack(path, axis=1), sim.foreclosed_at >= 0, np.stack(shares))


def shares_by_decade(outcome: Outcome) -> list[dict[str, float | str]]:
    """The policy's mean shares of the money left each month, by decade of age."""
    rows = []
    for start in range(0, MONTHS, 120):
        mean = outcome.shares[start : start + 120].mean(axis=0)
        ages = f"{START_AGE + start // 12}-{min(START_AGE + (start + 120) // 12, 80)}"
        rows.append({"ages": ages, **{n: float(v) for n, v in zip(ACTION_NAMES, mean)}})
    return rows


def fixed(weights: np.ndarray) -> Policy:
    weights = np.asarray(weights, dtype=np.float64)
    return lambda obs, sim: np.broadcast_to(weights, (len(obs), 4))


def uniform_random(seed: int) -> Policy:
    rng = np.random.default_rng(seed)
    return lambda obs, sim: rng.uniform(0.0, 1.0, (len(obs), 4))


def mortgage_first(obs: np.ndarray, sim: FinanceSim) -> np.ndarray:
    """All to the mortgage while a loan is left, then all to tax-advantaged saving."""
    owes = sim.loan > 0
    return np.where(owes[:, None], [1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0])


def keep_liquid(months: float) -> Policy:
    """A hand-written, state-dependent rule: everything to the taxable account until it
    holds `months` months of costs (living, rent, required payment), then everything to
    the tax-advantaged one (contributions past its cap spill into taxable). Savings a job
    loss can draw on without the early-withdrawal penalty."""

    def rule(obs: np.ndarray, sim: FinanceSim) -> np.ndarray:
        short = sim.taxable < months * sim.monthly_costs()
        return np.where(short[:, None], [0.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0])

    return rule


LIQUID_MONTHS = (0, 1, 2, 3, 4, 6, 9, 12, 18, 24)


def best_keep_liquid(params: FinanceParams, seeds: np.ndarray) -> tuple[float, dict[str, float]]:
    """The `keep_liquid` months with the highest mean gain on `seeds` (the selection
    lives), and every candidate's mean gain there, by months."""
    means = [simulate(keep_liquid(m), params, seeds, "").gain.mean() for m in LIQUID_MONTHS]
    best = int(np.argmax(means))
    return float(LIQUID_MONTHS[best]), {f"{m:g}": float(v) for m, v in zip(LIQUID_MONTHS, means)}


MAX_GRID_STEPS = 20  # 0.05: 1,771 allocations; finer grids take minutes and gigabytes


def simplex_grid(step: float) -> np.ndarray:
    """Every four-share allocation on a grid of `step` (0.1 gives 286 of them)."""
    if not (math.isfinite(step) and 1.0 / MAX_GRID_STEPS <= step <= 1.0):
        raise UserError(f"--grid_step must be in [{1 / MAX_GRID_STEPS:g}, 1], not {step}")
    n = round(1.0 / step)
    if abs(n * step - 1.0) > 1e-9:
        raise UserError(f"--grid_step must divide 1 into whole steps, not {step}")
    rows = [(a, b, c, n - a - b - c) for a, b, c in itertools.product(range(n + 1), repeat=3)]
    return np.array([r for r in rows if r[3] >= 0], dtype=np.float64) / n


def grid_search(params: FinanceParams, seeds: np.ndarray, step: float) -> tuple[np.ndarray, float]:
    """The grid allocation with the highest mean gain on `seeds`, and that mean.

    All allocations play at once, as one batch of len(grid) x len(seeds) lives.
    """
    grid = simplex_grid(step)
    weights = np.repeat(grid, len(seeds), axis=0)
    sim = FinanceSim(params)
    sim.reset(seeds, repeats=len(grid))  # allocation k plays lives k*B .. k*B + B - 1
    start = sim.real_net_worth()
    while not sim.done:
        sim.step(weights)
    means = ((sim.real_net_worth() - start) / 1e6).reshape(len(grid), len(seeds)).mean(axis=1)
    best = int(np.argmax(means))
    return grid[best], float(means[best])


def paired(outcome: Outcome, reference: Outcome) -> tuple[float, float]:
    """Mean and standard error of the per-life gain difference on the same lives."""
    diff = outcome.gain - reference.gain
    return float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(len(diff)))


def summarize(outcome: Outcome, best: Outcome, rule: Outcome) -> dict[str, float | str]:
    """A row: the policy's gains, foreclosures, and paired differences to the best fixed
    allocation and to the best hand-written rule."""
    gain, n = outcome.gain, len(outcome.gain)
    vs_fixed, vs_fixed_se = paired(outcome, best)
    vs_rule, vs_rule_se = paired(outcome, rule)
    return {
        "policy": outcome.name,
        "mean_gain": float(gain.mean()),
        "se": float(gain.std(ddof=1) / np.sqrt(n)),
        "median_gain": float(np.median(gain)),
        "p10_gain": float(np.percentile(gain, 10)),
        "foreclosed": float(outcome.foreclosed.mean()),
        "vs_best_fixed": vs_fixed,
        "vs_best_fixed_se": vs_fixed_se,
        "vs_best_rule": vs_rule,
        "vs_best_rule_se": vs_rule_se,
    }


def signal_to_noise(learned: Outcome, best: Outcome) -> dict[str, float]:
    """How loud the reward is against what the agent must learn, in age-18 dollars.

    `monthly_change_std`: the std of a month's real net-worth change under the best fixed
    allocation (mostly market noise on the balances): the reward's noise.
    `monthly_gap_mean`: the mean monthly difference of that change between the learned
    policy and the best fixed allocation on the same lives: the signal still to learn.
    """
    change = np.diff(best.real_net_worth, axis=1)
    gap = np.diff(learned.real_net_worth - best.real_net_worth, axis=1)
    return {
        "monthly_change_std": float(change.std()),
        "monthly_gap_mean": float(gap.mean()),
    }


def markdown_table(rows: list[dict[str, float | str]], lives: int) -> str:
    lines = [
        f"| policy ({lives} lives) | mean gain, $M | median | 10th pct | foreclosed "
        "| vs best fixed (paired), $M | vs best rule (paired), $M |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['policy']} | {r['mean_gain']:.2f} ± {r['se']:.2f} | {r['median_gain']:.2f} "
            f"| {r['p10_gain']:.2f} | {r['foreclosed']:.0%} "
            f"| {r['vs_best_fixed']:+.3f} ± {r['vs_best_fixed_se']:.3f} "
            f"| {r['vs_best_rule']:+.3f} ± {r['vs_best_rule_se']:.3f} |"
        )
    return "\n".join(lines)


def plot_net_worth(learned: Outcome, best: Outcome, path: str) -> None:
    """Mean real net worth against age, with 95% bands of the mean, and the paired gap."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ages = START_AGE + np.arange(MONTHS + 1) / 12
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True,
                                      gridspec_kw={"height_ratios": [2, 1]})  # fmt: skip
    for outcome, colour in ((learned, "tab:blue"), (best, "tab:orange")):
        worth = outcome.real_net_worth / 1e6
        mean = worth.mean(axis=0)
        band = 1.96 * worth.std(axis=0, ddof=1) / np.sqrt(len(worth))
        top.plot(ages, mean, color=colour, label=outcome.name)
        top.fill_between(ages, mean - band, mean + band, color=colour, alpha=0.25)
    top.set_ylabel("mean net worth, $M (age-18 dollars)")
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    gap = (learned.real_net_worth - best.real_net_worth) / 1e6
    mean = gap.mean(axis=0)
    band = 1.96 * gap.std(axis=0, ddof=1) / np.sqrt(len(gap))
    bottom.plot(ages, mean, color="tab:blue")
    bottom.fill_between(ages, mean - band, mean + band, color="tab:blue", alpha=0.25)
    bottom.axhline(0.0, color="grey", linewidth=0.8)
    bottom.set_ylabel("learned - best fixed, $M")
    bottom.set_xlabel("age")
    bottom.grid(alpha=0.3)
    fig.suptitle(f"{len(gap)} lives; bands are 95% intervals of the mean")
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


def plot_shares(learned: Outcome, rule: Outcome, path: str) -> None:
    """Where the money left each month goes over a life: the learned policy's mean shares
    beside the best hand-written rule's, stacked by age."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ages = START_AGE + np.arange(MONTHS) / 12
    colours = ("tab:brown", "tab:blue", "tab:green", "tab:red")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, outcome in zip(axes, (learned, rule)):
        ax.stackplot(ages, outcome.shares.T, labels=ACTION_NAMES, colors=colours, alpha=0.8)
        ax.set_title(outcome.name, fontsize=9)
        ax.set_xlabel("age")
        ax.set_xlim(START_AGE, START_AGE + MONTHS / 12)
    axes[0].set_ylabel("mean share of the money left each month")
    axes[0].set_ylim(0, 1)
    axes[1].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


def _read_agent(root_dir: str) -> str:
    try:
        with open(os.path.join(root_dir, "config.json")) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return "learned"
    run = data.get("run", data)
    return str(run.get("agent", "learned"))


def _open_run(root_dir: str, lives: int, overwrite: bool):  # noqa: ANN202
    """The run's exported policy and the finance parameters it was trained with, after the
    checks that must pass before anything is computed or written."""
    from tfa_suite.policy.saved import SavedPolicy

    if not 2 <= lives <= 10_000:
        raise UserError(f"--lives must be in [2, 10000] (a standard error needs two), not {lives}")
    if not os.path.isdir(root_dir):
        raise UserError(f"--root_dir {root_dir} does not exist")
    existing = [f for f in REPORT_FILES if os.path.exists(os.path.join(root_dir, f))]
    if existing and not overwrite:
        raise UserError(
            f"{root_dir} already has {', '.join(existing)}; pass --overwrite to replace them"
        )
    policy = SavedPolicy(os.path.join(root_dir, "policy"))
    if policy.env_spec.env != "finance":
        raise UserError(f"{root_dir} was trained on --env={policy.env_spec.env}, not finance")
    return policy, FinanceParams.from_kwargs(policy.env_spec.kwargs)


def score(
    learned_policy: Policy, name: str, params: FinanceParams, lives: int, grid_step: float,
    log: Callable[[str], None] = print,
) -> tuple[list[Outcome], dict[str, object]]:  # fmt: skip
    """Every policy on the same `lives` report lives: the learned one, the best fixed
    allocation and the best hand-written rule (both chosen on separate selection lives),
    and the other baselines. Returns the outcomes in row order and what was chosen."""
    seeds, selection = REPORT_SEED + np.arange(lives), SELECTION_SEED + np.arange(lives)
    grid = simplex_grid(grid_step)
    log(f"searching {len(grid)} fixed allocations and {len(LIQUID_MONTHS)} liquid buffers "
        f"on {lives} selection lives ...")  # fmt: skip
    best_weights, _ = grid_search(params, selection, grid_step)
    months, buffers = best_keep_liquid(params, selection)
    outcomes = [
        simulate(learned_policy, params, seeds, name, params.decision_months),
        simulate(fixed(best_weights), params, seeds,
                 "best fixed " + "/".join(f"{w:g}" for w in best_weights)),
        simulate(keep_liquid(months), params, seeds,
                 f"keep {months:g} months liquid, rest tax-advantaged (best rule)"),
        simulate(mortgage_first, params, seeds, "mortgage first, then tax-advantaged"),
        simulate(fixed(np.full(4, 0.5)), params, seeds, "fixed 0.5/0.5/0.5/0.5 (the course's)"),
        simulate(uniform_random(0), params, seeds, "uniform random"),
    ]  # fmt: skip
    chosen = {
        "best_fixed_weights": best_weights.tolist(),
        "best_rule_liquid_months": months,
        "liquid_months_selection_gains": buffers,  # mean $M on the selection lives
    }
    return outcomes, chosen


def report(root_dir: str, lives: int = 100, grid_step: float = 0.1, overwrite: bool = False,
           log: Callable[[str], None] = print) -> list[dict[str, float | str]]:  # fmt: skip
    """Scores the run's exported policy and the baselines; writes REPORT_FILES to root_dir."""
    simplex_grid(grid_step)  # a bad --grid_step is refused before anything runs
    policy, params = _open_run(root_dir, lives, overwrite)
    outcomes, chosen = score(
        lambda obs, sim: policy(obs), _read_agent(root_dir), params, lives, grid_step, log
    )
    learned, best, rule = outcomes[:3]
    rows = [summarize(o, best, rule) for o in outcomes]
    signal = signal_to_noise(learned, best)
    table = markdown_table(rows, lives)
    with open(os.path.join(root_dir, "finance_report.md"), "w") as f:
        f.write(table + "\n")
    decades = shares_by_decade(learned)
    with open(os.path.join(root_dir, "finance_report.json"), "w") as f:
        meta = {"lives": lives, "report_seed": REPORT_SEED, "selection_seed": SELECTION_SEED,
                "grid_step": grid_step, **chosen, "env_kwargs": policy.env_spec.kwargs}  # fmt: skip
        json.dump({**meta, "rows": rows, "signal_to_noise": signal,
                   "learned_shares_by_age": decades,
                   "best_rule_shares_by_age": shares_by_decade(rule)}, f, indent=2)  # fmt: skip
    reference = max((best, rule), key=lambda o: o.gain.mean())
    plot_net_worth(learned, reference, os.path.join(root_dir, "net_worth_by_age.png"))
    plot_shares(learned, rule, os.path.join(root_dir, "shares_by_age.png"))
    log(table)
    log(f"{learned.name}'s mean shares of the money left each month:")
    for row in decades:
        log(f"  ages {row['ages']}: " + ", ".join(f"{n} {row[n]:.0%}" for n in ACTION_NAMES))
    log(
        f"a month's real net-worth change varies by ${signal['monthly_change_std']:,.0f} (std); "
        f"the learned policy's mean monthly gap to the best fixed allocation is "
        f"${signal['monthly_gap_mean']:,.0f}"
    )
    log(f"wrote {', '.join(REPORT_FILES)} to {root_dir}")
    return rows
