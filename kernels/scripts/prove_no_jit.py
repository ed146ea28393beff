"""Prove that an AOT build makes every registered kernel launch without compiling (on a GPU).

    python kernels/scripts/prove_no_jit.py --prebuilt DIR [--kernel K] [--json FILE]

The same as ``python -m rocstack_kernels.no_jit``, which ``rocstack validate`` runs as its
``no-jit`` check; kept here for the device scripts.
"""

import sys

from rocstack_kernels.no_jit import main

if __name__ == "__main__":
    sys.exit(main())
