# tfa_suite: every target sets up what it needs. `make help` lists them.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
STAMP  := $(VENV)/.tfa_suite-installed
ANALYSIS_STAMP := $(VENV)/.tfa_suite-analysis-installed
NOTEBOOK_STAMP := $(VENV)/.tfa_suite-notebook-installed
SEED   ?= 0
ARGS   ?=
# Pinned here and in the lock: tf-agents 0.19.0 is installed without its stale pins.
TF_AGENTS := tf-agents==0.19.0

.PHONY: install-analysis install-notebook aggregate tune
.PHONY: help install train-cartpole train-atari train-pong-pg train-pong-ppo study-pong-pg results-pong-pg train-pendulum train-finance finance-report train-cartpole-tutorial test test-shuffled test-slow install-ray test-ray bench-scale lint format lock bench bench-continuous bench-onpolicy bench-atari bench-replay bench-profile bench-bound results-cartpole results-pendulum results-value results-tabular results-onpolicy train-tabular clean-venv

help:
	@echo "make install                 create $(VENV) and install the locked stack"
	@echo "make train-cartpole          train DQN on CartPole-v1 until solved (SEED=0, ARGS=...)"
	@echo "make train-atari             DQN from pixels (GAME=Pong, ATARI_CONFIG=..., SEED, ARGS)"
	@echo "make train-pong-pg           REINFORCE on Pong from pixels, after Karpathy 2016 (SEED, ARGS)"
	@echo "make train-pong-ppo          PPO on Pong from the same diff frames and network (SEED, ARGS)"
	@echo "make study-pong-pg           the Pong policy-gradient screening study: variants x seeds, then its table"
	@echo "make results-pong-pg         pong_pg.cfg on seeds 0-2 to +18, PPO beside it, scores and plot (ARGS=...)"
	@echo "make train-pendulum          AGENT=sac|td3|ddpg on Pendulum-v1 until solved (SEED, ARGS)"
	@echo "make train-finance           AGENT=ddpg|td3|sac|ppo on the finance simulation, then its baseline report"
	@echo "make finance-report          the baseline table and plot of a finance run (FINANCE_DIR=...)"
	@echo "make train-tabular           tabular Q-learning, TABULAR_ENV=mountaincar|cartpole|frozenlake (SEED, ARGS)"
	@echo "make train-cartpole-tutorial the TF-Agents tutorial setup on CartPole-v0"
	@echo "make tune                    Optuna study: AGENT=ppo ENV=CartPole-v1 TRIALS=20 (ARGS=train flags, --seeds)"
	@echo "make test                    fast test suite, one worker per core (TEST_WORKERS=0: serial)"
	@echo "make test-shuffled           the fast suite in a shuffled order (pytest-randomly, fixed seed)"
	@echo "make test-slow               learning tests that take minutes"
	@echo "make install-ray             add Ray core (requirements/ray-lock.txt) for --num_actors"
	@echo "make aggregate RUNS=...      IQM and median with 95% CIs of finished runs (rliable)"
	@echo "make install-analysis        add rliable and optuna (requirements/analysis-lock.txt)"
	@echo "make install-notebook        add nbclient and a kernel (requirements/notebook-lock.txt)"
	@echo "make test-ray                the --num_actors tests on a local Ray (~3 min)"
	@echo "make lint                    ruff check and format check"
	@echo "make bench                   CartPole wall time to solve vs Stable-Baselines3 (3 seeds)"
	@echo "make bench-continuous        Pendulum TD3/SAC/DDPG wall time to solve vs Stable-Baselines3 (3 seeds)"
	@echo "make bench-onpolicy          CartPole PPO wall time to solve vs Stable-Baselines3 PPO (3 seeds)"
	@echo "make results-cartpole        docs/results.md's CartPole table (train + evaluate, SEEDS=0,1,2)"
	@echo "make results-pendulum        docs/results.md's Pendulum table (SAC, TD3, DDPG; seeds 0-2)"
	@echo "make results-value           docs/results.md's dueling / prioritized / C51 CartPole table (seeds 0-2)"
	@echo "make results-tabular         docs/results.md's tabular Q-learning table (seeds 0-2)"
	@echo "make results-onpolicy        docs/results.md's PPO / A2C / REINFORCE table (seeds 0-2)"
	@echo "make bench-atari             Atari throughput, train-step variants and replay bytes (ARGS=--quick)"
	@echo "make bench-replay            prioritized vs uniform replay: ms per sampled batch at 100k and 1M"
	@echo "make bench-profile           where the seconds go in one PPO and one DQN CartPole run (ARGS=--quick)"
	@echo "make bench-bound             train step and env step alone: the in-graph loops' bound (ARGS=--quick)"
	@echo "make bench-scale             env steps/s with N = 1, 2, 4, 8 Ray actors, CartPole with and without a 5 ms step"
	@echo "make lock                    re-resolve requirements/lock.txt from setup.cfg"

install: $(STAMP)

$(STAMP): requirements/lock.txt setup.cfg pyproject.toml
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 11) <= v <= (3, 12) else "error: tfa_suite needs Python 3.11 or 3.12 (the locked numpy and TensorFlow wheels); $(PYTHON) is %d.%d. Use make PYTHON=python3.11" % v)'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing the locked stack into $(VENV) (first time: a few minutes)"
	$(PIP) install --quiet --no-deps -r requirements/lock.txt
	$(PIP) install --quiet --no-deps $(TF_AGENTS)
	$(PIP) install --quiet --no-deps -e .
	$(PY) -c "import tfa_suite, tensorflow as tf, tf_agents; from tf_agents.agents.dqn import dqn_agent; print('stack ok: tensorflow', tf.__version__, '| tf-agents', tf_agents.__version__)"
	@touch $@

train-cartpole: $(STAMP)
	$(PY) experiments/train.py --flagfile=experiments/configs/cartpole.cfg --seed=$(SEED) $(ARGS)

# DQN from pixels; GAME is an ALE game name as in ALE/<GAME>-v5 (Pong, Breakout, ...).
GAME ?= Pong
ATARI_CONFIG ?= experiments/configs/pong_fast.cfg
train-atari: $(STAMP)
	$(PY) experiments/train.py --flagfile=$(ATARI_CONFIG) --env=ALE/$(GAME)-v5 --seed=$(SEED) $(ARGS)

# Policy gradient on Pong from pixels (experiments/configs/pong_pg.cfg): a long run; it
# checkpoints every 250k env steps, and rerunning the command resumes it.
train-pong-pg: $(STAMP)
	$(PY) experiments/train.py --flagfile=experiments/configs/pong_pg.cfg --seed=$(SEED) $(ARGS)

# PPO on the same frames and network as train-pong-pg (experiments/configs/pong_ppo.cfg),
# the faster of the two here (docs/on-policy.md): +18 at about 750k env steps, 32 minutes
# on 2 cores, of its 10M (linear learning-rate decay over them). ARGS=--max_train_minutes=40
# ends it sooner with its exports; Ctrl-C checkpoints, and rerunning resumes it.
train-pong-ppo: $(STAMP)
	$(PY) experiments/train.py --flagfile=experiments/configs/pong_ppo.cfg --seed=$(SEED) $(ARGS)

# The screening study behind pong_pg.cfg's optimizer: four optimizer/learning-rate variants x
# seeds 0-2, 2M env steps each (~35 min per run on an idle 2-core machine), one at a time and
# resumable; then the table in docs/on-policy.md and the plot (ARGS=--report_only: the report).
study-pong-pg: $(STAMP)
	$(PY) benchmarks/pong_pg_study.py $(ARGS)

results-pong-pg: $(STAMP)
	$(PY) benchmarks/pong_pg_results.py $(ARGS)

# Continuous control on the compiled TF Pendulum: experiments/configs/pendulum_$(AGENT).cfg.
AGENT ?= sac
train-pendulum: $(STAMP)
	@test -f experiments/configs/pendulum_$(AGENT).cfg || { echo "error: AGENT=$(AGENT) has no experiments/configs/pendulum_$(AGENT).cfg; use AGENT=sac, td3 or ddpg" >&2; exit 2; }
	$(PY) experiments/train.py --flagfile=experiments/configs/pendulum_$(AGENT).cfg --seed=$(SEED) $(ARGS)

# The personal-finance simulation (tfa_suite/finance/): experiments/configs/
# finance_$(AGENT).cfg, DDPG by default, then the report against fixed allocations on the
# same 100 lives, written into the run dir (and replaced when rerun).
# DDPG unless AGENT is given on the command line or in the environment (the global
# default, sac, is Pendulum's).
ifeq ($(origin AGENT),file)
train-finance finance-report: AGENT = ddpg
endif
FINANCE_DIR ?= runs/finance-$(AGENT)-seed$(SEED)
train-finance: $(STAMP)
	@test -f experiments/configs/finance_$(AGENT).cfg || { echo "error: AGENT=$(AGENT) has no experiments/configs/finance_$(AGENT).cfg; use AGENT=ddpg, td3, sac or ppo" >&2; exit 2; }
	$(PY) experiments/train.py --flagfile=experiments/configs/finance_$(AGENT).cfg --seed=$(SEED) --root_dir=$(FINANCE_DIR) $(ARGS)
	$(PY) experiments/finance_report.py --root_dir=$(FINANCE_DIR) --overwrite

finance-report: $(STAMP)
	$(PY) experiments/finance_report.py --root_dir=$(FINANCE_DIR) --overwrite

# Tabular Q-learning: experiments/configs/$(TABULAR_ENV)_tabular.cfg (a grid over CartPole's
# or MountainCar's Box observation; FrozenLake's Discrete cells index the table directly).
TABULAR_ENV ?= mountaincar
train-tabular: $(STAMP)
	@test -f experiments/configs/$(TABULAR_ENV)_tabular.cfg || { echo "error: TABULAR_ENV=$(TABULAR_ENV) has no experiments/configs/$(TABULAR_ENV)_tabular.cfg; use TABULAR_ENV=mountaincar, cartpole or frozenlake" >&2; exit 2; }
	$(PY) experiments/train.py --flagfile=experiments/configs/$(TABULAR_ENV)_tabular.cfg --seed=$(SEED) $(ARGS)

train-cartpole-tutorial: $(STAMP)
	$(PY) experiments/train.py --flagfile=experiments/configs/cartpole_tutorial_v0.cfg --seed=$(SEED) $(ARGS)

# Hyperparameter tuning with Optuna (experiments/tune.py): TRIALS trials of AGENT on ENV, in
# runs/tune/<ENV>-<AGENT>/ (best.cfg, plots, summary.txt). ARGS fixes train flags (the budget
# per trial) and sets --seeds, --study or --search_space; rerunning continues the study.
# PPO on CartPole-v1 unless AGENT and ENV are given on the command line.
ifeq ($(origin AGENT),file)
tune: AGENT = ppo
endif
ifneq ($(origin ENV),command line)
tune: ENV = CartPole-v1
endif
TRIALS ?= 20
tune: $(STAMP) $(ANALYSIS_STAMP)
	$(PY) experiments/tune.py --agent=$(AGENT) --env=$(ENV) --trials=$(TRIALS) $(ARGS)

# The fast tier on one worker per core (pytest-xdist); a test module stays on one worker,
# so its module fixtures (a shared finished run) are built once. TEST_WORKERS=0: serial.
TEST_WORKERS ?= auto
XDIST = $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)
test: $(STAMP) $(ANALYSIS_STAMP) $(NOTEBOOK_STAMP)
	$(PY) -m pytest $(XDIST)

# The same suite in an order shuffled by pytest-randomly (seed SHUFFLE_SEED): every test
# must pass on its own, whatever ran before it. `-p randomly` re-enables the plugin that
# setup.cfg's addopts turn off for the normal order.
SHUFFLE_SEED ?= 12345
test-shuffled: $(STAMP) $(ANALYSIS_STAMP) $(NOTEBOOK_STAMP)
	$(PY) -m pytest $(XDIST) -p randomly -p no:cacheprovider --randomly-seed=$(SHUFFLE_SEED)

test-slow: $(STAMP) $(ANALYSIS_STAMP) $(NOTEBOOK_STAMP)
	$(PY) -m pytest $(XDIST) -m slow

# The analysis extra (rliable, optuna: experiments/aggregate.py and tune.py) and the
# notebook extra (nbclient and a kernel: the quickstart notebook's test), each pinned in
# its own lock and installed beside the main stack without changing it.
$(ANALYSIS_STAMP): requirements/analysis-lock.txt $(STAMP)
	$(PIP) install --quiet --no-deps -r requirements/analysis-lock.txt
	$(PY) -c "import rliable.library, optuna; print('analysis ok: optuna', optuna.__version__)"
	@touch $@

$(NOTEBOOK_STAMP): requirements/notebook-lock.txt $(STAMP)
	$(PIP) install --quiet --no-deps -r requirements/notebook-lock.txt
	$(PY) -c "import nbclient, ipykernel; print('notebook ok: nbclient', nbclient.__version__)"
	@touch $@

install-analysis: $(ANALYSIS_STAMP)

# Median and IQM with 95% bootstrap intervals, probability of improvement and the
# sample-efficiency curve of finished runs: make aggregate RUNS='runs/a-seed* runs/b-seed*'.
AGG_OUT ?= runs/aggregate
aggregate: $(ANALYSIS_STAMP)
	@test -n "$(RUNS)" || { echo "error: name the run dirs: make aggregate RUNS='runs/x-seed*' [AGG_OUT=dir]" >&2; exit 2; }
	$(PY) experiments/aggregate.py $(RUNS) --out=$(AGG_OUT) $(ARGS)
install-notebook: $(NOTEBOOK_STAMP)

# Ray core for --num_actors (tfa_suite/loops/ray/): an optional extra, pinned in its own
# lock and installed beside the main stack without changing it.
RAY_STAMP := $(VENV)/.tfa_suite-ray-installed

$(RAY_STAMP): requirements/ray-lock.txt $(STAMP)
	$(PIP) install --quiet --no-deps -r requirements/ray-lock.txt
	$(PY) -c "import ray; print('ray ok:', ray.__version__)"
	@touch $@

install-ray: $(RAY_STAMP)

# The tests that start a local Ray with 2 actor processes (marked ray; make test skips them).
test-ray: $(RAY_STAMP)
	$(PY) -m pytest -m ray

# Collected env steps/s with N = 1, 2, 4, 8 actors on CartPole, with and without a 5 ms step,
# and the learner's updates/s while they feed it; one run, written to
# benchmarks/results/scale.json and docs/scale-out.md (~15 min on an idle machine;
# ARGS=--quick: N = 1, 2, short windows, written to the temp dir).
bench-scale: $(RAY_STAMP)
	$(PY) benchmarks/bench_scale.py $(ARGS)

# Benchmark-only packages (Stable-Baselines3 + CPU torch) go into the same venv, pinned.
BENCH_STAMP := $(VENV)/.tfa_suite-bench-installed

$(BENCH_STAMP): requirements/bench-lock.txt $(STAMP)
	$(PIP) install --quiet --no-deps -r requirements/bench-lock.txt
	$(PY) -c "import sys; sys.modules['tensorflow'] = None; import torch, stable_baselines3 as sb3; print('bench ok: torch', torch.__version__, '| stable-baselines3', sb3.__version__)"
	@touch $@

# CartPole-v1 wall seconds to solve, tfa_suite vs Stable-Baselines3 (~10 min; ARGS=--quick).
bench: $(STAMP) $(BENCH_STAMP)
	$(PY) benchmarks/bench_cartpole.py $(ARGS)

# Pendulum-v1 wall seconds to solve, tfa_suite's TD3/SAC/DDPG vs Stable-Baselines3's, 3 seeds
# each, one process at a time (ARGS=--quick: 1 seed; ARGS=--smoke: 1 seed of 2,000 env steps
# per run, written to the temp dir).
bench-continuous: $(STAMP) $(BENCH_STAMP)
	$(PY) benchmarks/bench_continuous.py $(ARGS)

# CartPole-v1 wall seconds to solve, tfa_suite PPO (cartpole_ppo.cfg) vs Stable-Baselines3
# PPO, 3 seeds each, one process at a time (ARGS=--quick: 1 seed).
bench-onpolicy: $(STAMP) $(BENCH_STAMP)
	$(PY) benchmarks/bench_onpolicy.py $(ARGS)

# Atari throughput for pong_fast.cfg: emulator, collection, updates/s and variants, the
# collect+train loop, replay bytes (~15 min on an idle machine; ARGS=--quick: ~4 min).
.PHONY: bench-atari
bench-atari: $(STAMP)
	$(PY) benchmarks/bench_atari.py $(ARGS)

# Prioritized replay's sum tree (sample + priority update) against uniform sampling.
bench-replay: $(STAMP)
	$(PY) benchmarks/bench_replay.py $(ARGS)

# Where the time goes in one PPO (cartpole_ppo.cfg) and one DQN (cartpole.cfg) CartPole run,
# seed 0, process start to solve: imports, config, build, traces, collection, train steps,
# evaluations (~2 min on an idle machine; ARGS=--quick: short unsolved runs).
bench-profile: $(STAMP)
	$(PY) benchmarks/profile_run.py $(ARGS)

# The in-graph loops' bound for the same two configs: the train step alone on a fixed batch,
# the TF-native env step alone, their bound for the schedule, and the real loop's share of it
# (~3 min on an idle machine; ARGS=--quick: ~1 min).
bench-bound: $(STAMP)
	$(PY) benchmarks/bench_bound.py $(ARGS)

# docs/results.md's per-seed tables, each with its median and IQM and their 95% intervals
# (rliable, so the analysis extra). SEEDS=0,1,2,3,4 runs five seeds instead of three.
SEEDS ?= 0,1,2

# docs/results.md's CartPole table (and the README's agents table): make train-cartpole for
# seeds 0-2, then evaluate.py.
results-cartpole: $(STAMP) $(ANALYSIS_STAMP)
	$(PY) benchmarks/results_table.py --suite=cartpole --seeds=$(SEEDS) $(ARGS)

# docs/results.md's Pendulum table: make train-pendulum for SAC, TD3 and DDPG, seeds 0-2.
results-pendulum: $(STAMP) $(ANALYSIS_STAMP)
	$(PY) benchmarks/results_table.py --suite=pendulum --seeds=$(SEEDS) $(ARGS)

# docs/results.md's value-family table: make train-cartpole with --dueling, prioritized replay
# and both, seeds 0-2.
results-value: $(STAMP) $(ANALYSIS_STAMP)
	$(PY) benchmarks/results_table.py --suite=value --seeds=$(SEEDS) $(ARGS)

# docs/results.md's tabular Q-learning table: CartPole-v1 and MountainCar-v0, seeds 0-2.
results-tabular: $(STAMP) $(ANALYSIS_STAMP)
	$(PY) benchmarks/results_table.py --suite=tabular --seeds=$(SEEDS) $(ARGS)

# docs/results.md's on-policy table: PPO, A2C and REINFORCE (value baseline) on CartPole-v1 and
# PPO on Pendulum-v1, seeds 0-2.
results-onpolicy: $(STAMP) $(ANALYSIS_STAMP)
	$(PY) benchmarks/results_table.py --suite=onpolicy --seeds=$(SEEDS) $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check tfa_suite experiments tests benchmarks
	$(PY) -m ruff format --check tfa_suite experiments tests benchmarks

format: $(STAMP)
	$(PY) -m ruff format tfa_suite experiments tests benchmarks
	$(PY) -m ruff check --fix tfa_suite experiments tests benchmarks

# Re-resolves the lock in a scratch venv from setup.cfg's requirements (+ the dev extra).
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --disable-pip-version-check -e ".[dev]"
	{ sed -n '/^#/p' requirements/lock.txt; .lock-venv/bin/pip freeze --exclude-editable \
	  | grep -v -i -E '^(tf-agents|tf_agents|gym[-_]notices|tfa[-_]suite)[=@ ]'; } > requirements/lock.txt.new
	mv requirements/lock.txt.new requirements/lock.txt && rm -rf .lock-venv

clean-venv:
	rm -rf $(VENV)
