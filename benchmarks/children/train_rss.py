"""``CXR_TRAIN_ARGS...``: run ``cxr`` with these arguments in this fresh process, then print
``peak-rss-kb SELF CHILDREN``: this process's peak and its decode workers'.

The own peak is VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child
of a large process (the benchmark runner holds TF and VGG19) would report its parent's peak.
"""

from __future__ import annotations

import resource
import sys

from desktop.cli import main as cli_main


def main() -> int:
    rc = cli_main(sys.argv[1:])
    try:
        with open("/proc/self/status") as fh:
            s = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM"))
    except OSError:  # not Linux: ru_maxrss (KB on Linux/BSD) as an upper bound
        s = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    c = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print("peak-rss-kb", s, c)
    return rc


if __name__ == "__main__":
    sys.exit(main())
