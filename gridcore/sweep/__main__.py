"""``python -m gridcore.sweep``: an entry point only; the command is :mod:`gridcore.cli.sweep`."""

import sys

from gridcore.cli.sweep import main

sys.exit(main())
