"""``python -m gridcore COMMAND``: see :mod:`gridcore.cli.main`."""

import sys

from gridcore.cli.main import main

sys.exit(main())
