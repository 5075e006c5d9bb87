"""``python -m lucent_ws``: the same command line as ``run.py``."""

import sys

from .cli import main

sys.exit(main())
