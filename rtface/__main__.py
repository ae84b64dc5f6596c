"""``python -m rtface`` = the ``rtface`` command."""
import sys

from rtface.cli import main

sys.exit(main())
