"""Scale-out of the replay loop on Ray: `learner` (the `Loop` the session drives), `pool`
(the actor processes), `worker` (what runs inside one), `runtime` (starting Ray) and
`config` (the `--num_actors` section). See `learner`'s docstring and docs/scale-out.md."""
