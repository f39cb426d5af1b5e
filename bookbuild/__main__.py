"""``python -m bookbuild``: the build driver's command line (see the package docstring)."""

import sys

from bookbuild import main

sys.exit(main())
