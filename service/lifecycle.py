"""How the service's processes stop: refusing to start in one line, and a worker that
must not outlive the `bentoml serve` process that started it.

    pytest tests/security/test_lifecycle.py     # SIGKILL the main process, restart on the port

What cannot serve (a bad setting, a bad model) stops `bentoml serve` with one line and
exit 1, never a traceback or crash-looping workers behind a closed port.

When the main process is SIGKILLed (the OOM killer, `kill -9`), nothing tells its
workers: they keep the listening socket, and the next start on that port fails with
"Address already in use". Linux can tell them: PR_SET_PDEATHSIG delivers a signal to
a process when its parent dies. SIGTERM, so the orphan drains like any shutdown.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import sys
from typing import NoReturn

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def refuse_to_start(reason: object) -> NoReturn:
    """What cannot serve stops `bentoml serve` here: one line, exit 1, no traceback."""
    print(f"mnist service cannot start: {reason}", file=sys.stderr, flush=True)
    sys.exit(1)


def die_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Ask the kernel for `sig` when our parent dies; False where that is not possible."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
        return False
    return True
