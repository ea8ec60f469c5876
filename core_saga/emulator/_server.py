"""The emulator's launcher: ``python -m core_saga.emulator._server --port N``.

It runs inside the server process: it arranges to die with its parent, applies our
extensions to moto (the built-in ones, then modules named in ``--extension`` or
``STEPSAGA_EMULATOR_EXTENSIONS``), switches Step Functions execution on (unless
``--no-execute``), then runs moto's server on 127.0.0.1.

Dying with the parent: ``start_emulator`` gives the server a pipe as stdin and passes
``--watch-stdin``; when the parent dies, however it dies, the pipe reaches end of file
and the server exits at once. As a second line, a thread polls the parent's pid
(``--parent 0`` turns that off, for a server started by hand that should outlive its
shell).
(``PR_SET_PDEATHSIG`` is not used: it fires when the *thread* that started the child
ends, which would kill a server started from a worker thread.)
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import threading
import time


def _die_with_parent(parent: int, watch_stdin: bool) -> None:
    def watch_pipe() -> None:
        while sys.stdin.buffer.read(4096):
            pass
        os._exit(0)

    def watch_pid() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    if watch_stdin:
        threading.Thread(target=watch_pipe, name="parent-pipe", daemon=True).start()
    if parent > 0:
        threading.Thread(target=watch_pid, name="parent-pid", daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments, apply the extensions and serve (does not return)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--parent", type=int, default=os.getppid(),
                        help="exit when this process ends (default: the parent; 0: never)")
    parser.add_argument("--watch-stdin", action="store_true",
                        help="exit when stdin reaches end of file (the parent's pipe)")
    parser.add_argument("--extension", action="append", default=[],
                        help="an extra module to import before serving (repeatable)")
    parser.add_argument("--no-execute", action="store_true",
                        help="leave Step Functions execution off (moto's default); by "
                             "default state machines run their ASL")
    args = parser.parse_args(argv)
    _die_with_parent(args.parent, args.watch_stdin)
    os.environ["MOTO_PORT"] = str(args.port)
    from . import _extensions

    _extensions.apply_all()
    extra = [m for m in os.environ.get("STEPSAGA_EMULATOR_EXTENSIONS", "").split(",") if m]
    for module in [*extra, *args.extension]:
        importlib.import_module(module)
    if not args.no_execute:  # as POST /moto-api/config would: a started server runs ASL
        from moto.core.config import default_user_config

        default_user_config["stepfunctions"] = {"execute_state_machine": True}
    from moto import server

    sys.stdout.flush()
    server.main(["--host", "127.0.0.1", "--port", str(args.port)])


if __name__ == "__main__":
    main()
