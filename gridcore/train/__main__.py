"""``python -m gridcore.train``: see :mod:`gridcore.cli.train`."""

import sys

from gridcore.cli.train import main

sys.exit(main())
