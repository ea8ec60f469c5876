"""The emulator's launcher: ``python -m core_saga.emulator._server --port N``.

It runs inside the server process: it arranges to die with its parent, applies our
extensions to moto (modules named in ``--extension`` or ``STEPSAGA_EMULATOR_EXTENSIONS``,
plus the built-in ones), then runs moto's server on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    try:  # Linux: the kernel kills us when the parent goes.
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass

    def watch() -> None:  # elsewhere (and as a second line): poll the parent.
        while True:
            if os.getppid() != parent:
                os._exit(0)
            time.sleep(0.5)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--parent", type=int, default=os.getppid())
    parser.add_argument("--extension", action="append", default=[],
                        help="an extra module to import before serving (repeatable)")
    args = parser.parse_args(argv)
    _die_with_parent(args.parent)
    os.environ["MOTO_PORT"] = str(args.port)
    from . import _extensions

    _extensions.apply_all()
    extra = [m for m in os.environ.get("STEPSAGA_EMULATOR_EXTENSIONS", "").split(",") if m]
    for module in [*extra, *args.extension]:
        importlib.import_module(module)
    from moto import server

    sys.stdout.flush()
    server.main(["--host", "127.0.0.1", "--port", str(args.port)])


if __name__ == "__main__":
    main()
