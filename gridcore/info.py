"""``python -m gridcore.info``: an entry point only; the command is :mod:`gridcore.cli.info`."""

import sys

from gridcore.cli.info import main

if __name__ == "__main__":
    sys.exit(main())
