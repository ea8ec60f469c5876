"""A tiny HTTP endpoint for liveness (/health), readiness (/ready) and metrics
(/metrics, Prometheus text)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import orjson


class HealthServer:
    """Answers ``GET /health`` (the process loop runs) and ``GET /ready`` (the worker
    has started and its checks pass) with 200 or 503 and a JSON body."""

    def __init__(self, host: str, port: int, *, alive: Callable[[], bool],
                 ready: Callable[[], Awaitable[dict[str, bool]]],
                 metrics: Callable[[], bytes | None] | None = None) -> None:
        self.host = host
        self.port = port
        self._alive = alive
        self._ready = ready
        self._metrics = metrics
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        sockets = self._server.sockets or ()
        if sockets:
            self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), timeout=5)
            parts = request.decode(errors="replace").split()
            path = parts[1] if len(parts) > 1 else "/"
            if path == "/metrics":
                text = self._metrics() if self._metrics is not None else None
                if text is None:
                    text = (b"# metrics are off: install the 'otel' extra and call "
                            b"core_saga.telemetry.configure() (stepsaga worker does)\n")
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; "
                             b"charset=utf-8\r\nContent-Length: " + str(len(text)).encode()
                             + b"\r\nConnection: close\r\n\r\n" + text)
                await writer.drain()
                return
            if path == "/health":
                ok = self._alive()
                body: dict[str, object] = {"status": "ok" if ok else "stopping"}
            elif path == "/ready":
                checks = await self._ready()
                ok = all(checks.values())
                body = {"status": "ready" if ok else "not ready", "checks": checks}
            else:
                ok, body = False, {"error": f"no such path {path!r}; use /health, /ready "
                                            "or /metrics"}
            status = "200 OK" if ok else ("404 Not Found" if "error" in body
                                          else "503 Service Unavailable")
            payload = orjson.dumps(body)
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
                         .encode() + payload)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
