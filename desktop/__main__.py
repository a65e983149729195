"""``python -m desktop`` starts the review app."""

import sys

from desktop.launcher import main

sys.exit(main())
