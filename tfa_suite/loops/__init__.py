"""Loops: how data flows from the environment to the agent's train step.

- `replay`: collect into a replay buffer and train on samples of it (DQN, C51, DDPG,
  TD3, SAC, tabular Q): `tfa_suite.loops.replay`; with `--num_actors > 0`, Ray actor
  processes collect and this process trains: `tfa_suite.loops.ray`.
- `rollout`: collect a fixed rollout with the current policy, train on it, discard it
  (REINFORCE, A2C, PPO): `tfa_suite.loops.rollout`.

What the session needs from any loop is written down in `tfa_suite.loops.base.Loop`. The
name of each loop kind, with its config section, is in `tfa_suite.catalog.LOOPS`.
"""
