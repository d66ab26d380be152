"""``python -m wsp``: the same as the ``wsp`` console script."""
import sys

from wsp.cli import main

sys.exit(main())
