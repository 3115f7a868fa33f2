"""Studies over many runs: multi-seed aggregates with confidence intervals (`aggregate`) and
hyperparameter tuning (`tune`). Both read and start runs through the same entry point as
the binaries; they need the analysis extra (`make install-analysis`: rliable, optuna)."""
