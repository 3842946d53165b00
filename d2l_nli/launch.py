"""``python -m d2l_nli.launch``: start a distributed job (see :mod:`d2l_nli.machinery.launch`)."""
import sys

from .machinery.launch import main

if __name__ == '__main__':
    sys.exit(main())
