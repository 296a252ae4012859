"""``python -m unetkit`` is the ``unetkit`` command (torchrun's ``-m unetkit`` needs it)."""

import sys

from .cli import entry_point

sys.exit(entry_point())
