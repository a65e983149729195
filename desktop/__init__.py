"""cxr-review desktop app and command line.

Only ``desktop.ui`` imports Qt; TensorFlow is imported lazily inside the
Grad-CAM worker, never at start-up (both enforced by tests and
import-linter).
"""

__version__ = "0.1.0"
