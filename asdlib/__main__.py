"""``python -m asdlib ...``: see :mod:`asdlib.cli`."""
from asdlib.cli import main

raise SystemExit(main())
