"""``python -m gridcore.export``: an entry point only; the command is :mod:`gridcore.cli.export`."""

import sys

from gridcore.cli.export import main

if __name__ == "__main__":
    sys.exit(main())
