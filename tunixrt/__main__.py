"""``python -m tunixrt``: the shell command, for kernels whose venv is not on PATH."""

import sys

from tunixrt_jupyter.cli import main

sys.exit(main())
