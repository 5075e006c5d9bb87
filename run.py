"""Run the lucent_ws hub standalone: ``python run.py --help``."""

import sys

from lucent_ws.cli import main

if __name__ == "__main__":
    sys.exit(main())
