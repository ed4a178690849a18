"""``python -m histo``: the ``histo`` command line (:func:`histo.cli.main`), for environments
where the console script is not on ``PATH`` (a cluster job, a notebook's ``!python -m histo``)."""

from __future__ import annotations

import sys

from histo.cli import main

if __name__ == "__main__":
    sys.exit(main())
