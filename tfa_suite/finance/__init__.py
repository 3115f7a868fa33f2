"""The personal-finance simulation (the course's DDPG demo): `params` (parameters and money
math), `sim` (a batch of lives in numpy), `env` (its TF-Agents and gymnasium views),
`chart` (the video's frames) and `report` (a trained policy against the rules a person
would use, on the same lives). `--env=finance` trains on it."""
