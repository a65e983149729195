"""``python -m desktop`` starts the review app."""

import sys

from desktop.launcher import main

if __name__ == "__main__":  # the Grad-CAM child process re-imports this module (spawn)
    sys.exit(main())
