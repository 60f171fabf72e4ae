"""``python -m hte.config CONFIG [--set key=value] [--no-data]``: check a config without running it."""

from hte.config.preflight import main

raise SystemExit(main())
