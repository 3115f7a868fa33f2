"""Replay buffers beyond TF-Agents' own: `FrameStoreReplay` stores each stacked frame once."""

from tfa_suite.replay.frame_store import RESET_PADDINGS, FrameStoreReplay, SampleInfo

__all__ = ["RESET_PADDINGS", "FrameStoreReplay", "SampleInfo"]
