"""Entry point of ``python -m d2l_nli``."""
import sys

from .machinery.cli import main

sys.exit(main())
