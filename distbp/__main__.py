"""python -m distbp ...: the same as the `distbp` command."""
import sys

from distbp.cli import main

sys.exit(main())
