"""``python -m unetkit`` is the ``unetkit`` command (torchrun's ``-m unetkit`` needs it)."""

import sys

from .cli import main

sys.exit(main())
