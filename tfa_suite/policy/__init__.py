"""Exported policies without TF-Agents or the training code: load one (`saved`), play and
score it on real gymnasium or ALE environments (`episodes`), film it (`video`).
`experiments/evaluate.py` uses this layer alone."""
