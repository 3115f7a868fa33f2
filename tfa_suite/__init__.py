"""tfa_suite: DQN-family agents on TF-Agents that install today, train fast and show results.

Importing this package selects the Keras 2 API (tf-keras) for TensorFlow. TF-Agents 0.19 is
written against Keras 2, and TensorFlow >= 2.16 picks Keras 3 unless TF_USE_LEGACY_KERAS=1
is set *before* TensorFlow is first imported, so this must run before anything imports it.
"""

import os
import sys

__version__ = "0.1.0"

if "tensorflow" in sys.modules and os.environ.get("TF_USE_LEGACY_KERAS") != "1":
    raise ImportError(
        "tensorflow was imported before tfa_suite without TF_USE_LEGACY_KERAS=1; "
        "import tfa_suite first or export TF_USE_LEGACY_KERAS=1"
    )
os.environ["TF_USE_LEGACY_KERAS"] = "1"
# TensorFlow's C++ start-up chatter (oneDNN notices, CPU feature banners) buries the
# progress output; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
