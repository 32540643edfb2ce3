"""``python -m gridcore.analyze``: an entry point only; the command is :mod:`gridcore.cli.analyze`."""

import sys

from gridcore.cli.analyze import main

if __name__ == "__main__":
    sys.exit(main())
