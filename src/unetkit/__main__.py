"""``python -m unetkit`` is the ``unetkit`` command (torchrun's ``-m unetkit`` needs it)."""

import sys

from .cli import main
from .errors import EXIT_INTERRUPTED

try:
    code = main()
except KeyboardInterrupt:  # a SIGINT outside main's own handlers (as it returns): the stop, without a traceback
    print("unetkit: interrupted", file=sys.stderr)
    code = EXIT_INTERRUPTED
sys.exit(code)
