"""The finance table of docs/finance.md and the README, from committed finance reports.

    python benchmarks/finance_table.py results/finance_ppo-seed0 results/finance_ppo-seed1 ...

Each argument is a folder with a finance_report.json that experiments/finance_report.py
wrote (copied into results/ by benchmarks/export_run.py). Every report must have scored
the same held-out lives (the same report seed and count), so their rows are comparable:
one row per learned policy (labelled with its agent, seed and folder), then the rules
from the first report. Written between the `finance-table` markers of docs/finance.md,
and of README.md with only the two best rules.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARKERS = ("<!-- finance-table:start -->", "<!-- finance-table:end -->")


def load(folder: str) -> dict:
    path = os.path.join(folder, "finance_report.json")
    if not os.path.isfile(path):
        sys.exit(f"error: {path} does not exist; run experiments/finance_report.py first")
    with open(path) as f:
        report = json.load(f)
    with open(os.path.join(folder, "summary.json")) as f:
        summary = json.load(f)  # export_run.py's; older ones name the seed in the command
    seeds = [w.removeprefix("--seed=") for w in summary["command"].split() if "--seed=" in w]
    report["seed"] = summary.get("seed", seeds[0] if seeds else "?")
    report["folder"] = os.path.relpath(folder, REPO)
    return report


def row(r: dict, label: str) -> str:
    return (
        f"| {label} | {r['mean_gain']:.2f} ± {r['se']:.2f} | {r['p10_gain']:.2f} | "
        f"{r['foreclosed']:.0%} | {r['vs_best_fixed']:+.3f} ± {r['vs_best_fixed_se']:.3f} | "
        f"{r['vs_best_rule']:+.3f} ± {r['vs_best_rule_se']:.3f} |"
    )


def table(reports: list[dict], rules: int | None = None) -> list[str]:
    """The learned rows, then the first report's rules (the first `rules` of them)."""
    first = reports[0]
    for r in reports[1:]:
        if (r["report_seed"], r["lives"]) != (first["report_seed"], first["lives"]):
            sys.exit(f"error: {r['folder']} scored other lives than {first['folder']}")
    lines = [
        f"| policy ({first['lives']} held-out lives) | mean gain, $M | 10th pct | foreclosed "
        "| vs best fixed (paired), $M | vs best rule (paired), $M |",
        "|---|---|---|---|---|---|",
    ]
    for r in reports:
        learned = r["rows"][0]
        label = f"{learned['policy']}, seed {r['seed']} (`{r['folder']}`)"
        lines.append(row(learned, label))
    lines += [row(r, r["policy"]) for r in first["rows"][1:][:rules]]
    return lines


def write(path: str, lines: list[str]) -> None:
    with open(path) as f:
        text = f.read()
    start, end = MARKERS
    if start not in text or end not in text:
        print(f"note: {os.path.relpath(path, REPO)} has no finance-table markers")
        return
    body = "\n".join([start, *lines, end])
    text = text[: text.index(start)] + body + text[text.index(end) + len(end) :]
    with open(path, "w") as f:
        f.write(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+")
    args = parser.parse_args()
    reports = [load(f) for f in args.folders]
    lines = table(reports)
    print("\n".join(lines))
    write(os.path.join(REPO, "docs", "finance.md"), lines)
    # The README keeps the learned rows and the two best rules; the rest are in the docs.
    write(os.path.join(REPO, "README.md"), table(reports, rules=2))


if __name__ == "__main__":
    main()
