"""``python -m gridcore.reproduce``: an entry point only; the command is :mod:`gridcore.cli.reproduce`."""

import sys

from gridcore.cli.reproduce import main

if __name__ == "__main__":
    sys.exit(main())
