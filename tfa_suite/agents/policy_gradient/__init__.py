"""The policy-gradient agents on the rollout loop: REINFORCE (`reinforce`), A2C and PPO
(`ppo`), with what they share (`common`), their advantage math (`advantages`) and the
in-graph observation preprocessing of their networks (`preprocessing`)."""
