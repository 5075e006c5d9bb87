"""``python -m bench [all | list | plot | SCENARIO...]``."""

from bench.runner import main

raise SystemExit(main())
