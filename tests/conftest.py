"""Imported by pytest before any test module: `import tfa_suite` selects Keras 2
(TF_USE_LEGACY_KERAS=1) before anything can import TensorFlow."""

import tfa_suite  # noqa: F401
