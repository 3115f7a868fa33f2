"""TF-native environments: the same dynamics as gymnasium's, stepped inside the graph, so
the whole collect-train loop compiles with no host round trip (`training_env` picks them).
Each matches its gymnasium env step for step; a side-by-side test checks it."""
