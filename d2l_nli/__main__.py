"""Entry point of ``python -m d2l_nli``."""
import sys

from .cli import main

sys.exit(main())
