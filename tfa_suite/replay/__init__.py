"""Replay buffers beyond TF-Agents' own: `FrameStoreReplay` stores each stacked frame once."""

from tfa_suite.replay.frame_store import LAYOUTS, RESET_PADDINGS, FrameStoreReplay, SampleInfo

__all__ = ["LAYOUTS", "RESET_PADDINGS", "FrameStoreReplay", "SampleInfo"]
