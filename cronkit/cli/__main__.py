"""``python -m cronkit.cli``: the same as the ``cronkit`` command."""

import sys

from cronkit.cli import main

sys.exit(main())
