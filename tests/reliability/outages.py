"""The long infrastructure faults of a reliability run, each injected once: the database
down (PostgreSQL stopped ``-m immediate`` on a cluster of the run's own; SQLite's disk
full on a small tmpfs), AWS unreachable (a TCP proxy between the workers and the
emulator that stops listening and drops its connections), and a process frozen
(SIGSTOP) with a transaction open on the hot row."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit


class AwsProxy:
    """A TCP proxy from a local port to the emulator: the workers' only way to AWS, so
    that the harness can take AWS away from them (and only from them)."""

    def __init__(self, target_url: str) -> None:
        parts = urlsplit(target_url)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def up(self) -> None:
        """Listen (again, on the same port)."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port,
                                                  reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        """Refuse new connections and drop the open ones: AWS is unreachable."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def close(self) -> None:
        await self.down()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                     ) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(OSError):
            writer.transport.abort()


class SmallDisk:
    """A tmpfs of `megabytes` mounted at `where`, for the SQLite files; :meth:`fill`
    takes all its space, :meth:`free` gives it back. Mounting needs root (or the
    capability): :meth:`mount` says whether it worked."""

    def __init__(self, where: Path, megabytes: int) -> None:
        self.where = where
        self.megabytes = megabytes
        self.mounted = False
        self.reason = ""
        self._filler = where / "filler"

    def mount(self) -> bool:
        if os.geteuid() != 0 or shutil.which("mount") is None:
            self.reason = "mounting a tmpfs needs root"
            return False
        self.where.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.megabytes}m",
                               "tmpfs", str(self.where)], capture_output=True, text=True)
        if done.returncode != 0:
            self.reason = f"cannot mount a tmpfs here: {done.stderr.strip()}"
            return False
        self.mounted = True
        return True

    def fill(self) -> int:
        """Write until the file system is full; the bytes written."""
        written = 0
        with self._filler.open("wb", buffering=0) as out:  # unbuffered: ENOSPC here
            for size in (1 << 20, 1 << 16, 1 << 12):
                block = b"\0" * size
                while True:
                    try:
                        out.write(block)
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
                    written += size
        return written

    def free(self) -> None:
        self._filler.unlink(missing_ok=True)

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.where)], check=False)
            self.mounted = False


_HOLD_ROW = """
import asyncio, sys
import asyncpg

async def main(url, schema, sku):
    conn = await asyncpg.connect(url, server_settings={
        "search_path": schema, "application_name": "stepsaga-reliability-frozen",
        "idle_in_transaction_session_timeout": "60000"})
    tx = conn.transaction()
    await tx.start()
    await conn.execute("UPDATE stock SET available = available WHERE sku = $1", sku)
    print("holding", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main(*sys.argv[1:]))
"""


class FrozenTransaction:
    """A process that updates the hot row (taking its lock), says so, and is then frozen
    with SIGSTOP — what a worker stopped by the OS, a debugger or a GC pause mid-
    transaction looks like to the database and to the other workers."""

    def __init__(self, url: str, schema: str, sku: str) -> None:
        self.args = [sys.executable, "-c", _HOLD_ROW, url, schema, sku]
        self.process: subprocess.Popen[str] | None = None

    async def freeze(self) -> None:
        self.process = await asyncio.to_thread(subprocess.Popen, self.args,
                                               stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = await asyncio.to_thread(self.process.stdout.readline)
        if line.strip() != "holding":
            raise RuntimeError(f"the frozen transaction did not start: {line!r}")
        self.process.send_signal(signal.SIGSTOP)

    async def thaw_and_end(self) -> None:
        """SIGCONT, then end it (its transaction rolls back, if the server's timeout has
        not ended it already)."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGCONT)
        self.process.kill()
        await asyncio.to_thread(self.process.wait)
        self.process = None
