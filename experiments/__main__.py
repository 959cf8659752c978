import sys

from .runner.cli import main

if __name__ == "__main__":  # worker processes are spawned: they import this module, never run it
    sys.exit(main())
