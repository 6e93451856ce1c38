"""``python -m rmt_init``: the same as the ``rmt-init`` command."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
