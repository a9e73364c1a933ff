"""HTTP/1.1 transport: request parsing, response writing, keep-alive, faults at the socket level.

Standard library only (``http.server``), tuned for throughput: TCP_NODELAY, no per-request
logging, Content-Length for buffered bodies and chunked transfer encoding for streamed ones (Bulk
CSV chunks are generated block by block, so memory stays flat however large the chunk).
"""

from __future__ import annotations

import contextlib
import email.utils
import gzip
import json
import selectors
import socket
import struct
import threading
import time
import urllib.parse
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, TYPE_CHECKING, Any

from .cache import GZIP_LEVEL, BlockCache

if TYPE_CHECKING:
    from .emulator import SalesforceEmulator

JSON_TYPE = "application/json;charset=UTF-8"
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
"""A gzip member's header: deflate, no flags, no time, unknown system."""
FINAL_EMPTY_BLOCK = b"\x03\x00"
"""An empty final deflate block (fixed Huffman codes): it ends a stream of sync-flushed segments."""
MAX_BUFFERED_BODY = 64 * 1024 * 1024


class ErrorReply(Exception):
    """Raised by a route handler to answer an error in Salesforce's REST shape
    ``[{"message", "errorCode", "fields"?}]``.

    Named apart from the provider's ``salesforce.errors.ApiError`` (what a client raises when it
    receives such an answer): this one is the server side, the answer being sent.
    """

    def __init__(
        self, status: int, code: str, message: str, fields: list[str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields

    def response(self) -> Response:
        item: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields is not None:
            item["fields"] = self.fields
        return Response.json(self.status, [item])


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = JSON_TYPE
    headers: list[tuple[str, str]] = field(default_factory=list)
    stream: Iterable[bytes] | None = None  # streamed with chunked encoding when set
    close: bool = False

    @classmethod
    def json(cls, status: int, obj: Any, headers: list[tuple[str, str]] | None = None) -> Response:
        body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
        return cls(status, body, JSON_TYPE, headers or [])

    @classmethod
    def empty(cls, status: int = 204) -> Response:
        return cls(status, b"", None)


@dataclass
class Request:
    """One parsed request, handed to route handlers (and, as ``request_info``, to Apex handlers)."""

    method: str
    path: str
    query: dict[str, str]
    headers: Any
    handler: _Handler | None = None
    version: str | None = None
    session: Any = None
    _body: bytes | None = None
    _consumed: bool = False

    @property
    def body(self) -> bytes:
        if self._body is None:
            self._body = self.handler.read_body(MAX_BUFFERED_BODY) if self.handler else b""
            self._consumed = True
        return self._body

    def json(self) -> Any:
        """The JSON body; malformed JSON answers 400 JSON_PARSER_ERROR like Salesforce."""
        raw = self.body
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            raw = gzip.decompress(raw)
        try:
            return json.loads(raw or b"null")
        except ValueError as exc:
            raise ErrorReply(400, "JSON_PARSER_ERROR", f"Unexpected character: {exc}") from None

    def stream_body(self, sink: IO[bytes], limit: int) -> int:
        """Copy the body to ``sink`` without buffering it; returns bytes written."""
        assert self.handler is not None
        self._consumed = True
        return self.handler.copy_body(sink, limit)

    def drain(self) -> None:
        if not self._consumed and self.handler is not None:
            self.handler.discard_body()
            self._consumed = True


class OpenConnections:
    """Client sockets being served, so :meth:`SalesforceEmulator.stop` can drop them all
    (a keep-alive client would otherwise hold a handler thread after the server stopped)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._socks.add(sock)

    def discard(self, sock: socket.socket) -> None:
        with self._lock:
            self._socks.discard(sock)

    def __len__(self) -> int:
        with self._lock:
            return len(self._socks)

    def close_all(self) -> None:
        with self._lock:
            socks = list(self._socks)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr: tuple[str, int], emulator: SalesforceEmulator) -> None:
        self.emulator = emulator
        self._stop_requested = False
        self._wake_r, self._wake_w = socket.socketpair()
        super().__init__(addr, _Handler)

    def run(self) -> None:
        """Accept connections until :meth:`stop`.

        ``serve_forever`` polls for shutdown every ``poll_interval``, so stopping an emulator
        would cost a tenth of a second in every test; a wake-up socket ends the wait at once.
        """
        with selectors.DefaultSelector() as selector:
            selector.register(self, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._stop_requested:
                for key, _ in selector.select():
                    if key.fileobj is self and not self._stop_requested:
                        self._accept()

    def _accept(self) -> None:
        """Take one pending connection and hand it to a handler thread."""
        try:
            request, client_address = self.get_request()
        except OSError:
            return
        try:
            self.process_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
            self.shutdown_request(request)

    def stop(self, thread: threading.Thread | None) -> None:
        """End :meth:`run` (running in ``thread``) and close the listening socket."""
        self._stop_requested = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if thread is not None:
            thread.join()
        self.server_close()
        self._wake_r.close()
        self._wake_w.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Client disconnects and TLS handshake failures are normal in tests: stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SFDC"
    sys_version = ""
    timeout = 120
    server: Server

    # ------------------------------------------------------------------ connection
    def setup(self) -> None:
        emu = self.server.emulator
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if emu.latency.active:  # the handshakes of a new connection, on a slow network
            emu.pause(emu.latency.connect_delay(emu.ssl_context is not None))
        if emu.ssl_context is not None:
            self.request.settimeout(10)
            self.request = emu.ssl_context.wrap_socket(self.request, server_side=True)
        super().setup()
        emu.connections.add(self.request)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.emulator.connections.discard(self.request)

    def version_string(self) -> str:
        return "SFDC"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """No per-request logging: it costs more than serving a page."""

    def date_time_string(self, timestamp: float | None = None) -> str:
        return email.utils.formatdate(self.server.emulator.now(), usegmt=True)

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, TimeoutError, OSError):
            self.close_connection = True

    def _dispatch(self) -> None:
        emu = self.server.emulator
        parsed = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
        req = Request(self.command, parsed.path, query, self.headers, self)
        resp, reset_after = emu.handle(req)
        req.drain()
        self.send(resp, reset_after)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch

    # ------------------------------------------------------------------ request bodies
    def _length(self) -> int | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return None
        return int(self.headers.get("Content-Length") or 0)

    def _iter_body(self, block: int = 1 << 16) -> Iterator[bytes]:
        length = self._length()
        if length is not None:
            yield from self._read_exactly(length, block)
            return
        while True:
            line = self.rfile.readline(65537)
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return
            yield from self._read_exactly(size, block)
            self.rfile.readline(3)

    def _read_exactly(self, size: int, block: int) -> Iterator[bytes]:
        """``size`` bytes of the body (a whole Content-Length body or one chunk) in ``block``
        pieces, so a large upload is never held in memory at once."""
        while size > 0:
            data = self.rfile.read(min(block, size))
            if not data:
                raise ConnectionError("client closed the connection mid-body")
            size -= len(data)
            yield data

    def read_body(self, limit: int) -> bytes:
        parts, total = [], 0
        for data in self._iter_body():
            total += len(data)
            if total > limit:
                self.close_connection = True
                raise ErrorReply(413, "REQUEST_ENTITY_TOO_LARGE", "Request body too large")
            parts.append(data)
        return b"".join(parts)

    def copy_body(self, sink: IO[bytes], limit: int) -> int:
        """Stream the body into ``sink`` up to ``limit`` bytes; returns the full body size.

        An oversized body is still read (and dropped) up to a hard cap, so the client gets the
        error response instead of a connection reset while it is still sending.
        """
        length = self._length()
        cap = limit + MAX_BUFFERED_BODY
        if length is not None and length > cap:
            self.close_connection = True
            return length
        total = 0
        try:
            for data in self._iter_body(1 << 20):
                if total + len(data) <= limit:
                    sink.write(data)
                total += len(data)
                if total > cap:
                    self.close_connection = True
                    break
        except (ConnectionError, ValueError):
            self.close_connection = True
        return total

    def discard_body(self) -> None:
        length = self._length()
        if length is not None and length > MAX_BUFFERED_BODY:
            self.close_connection = True
            return
        try:
            for _ in self._iter_body():
                pass
        except (ConnectionError, ValueError):
            self.close_connection = True

    # ------------------------------------------------------------------ responses
    def send(self, resp: Response, reset_after: int | None) -> None:
        emu = self.server.emulator
        gz = (
            emu.gzip
            and "gzip" in self.headers.get("Accept-Encoding", "").lower()
            and (resp.stream is not None or len(resp.body) > 1024)
        )
        self.send_response(resp.status)
        if resp.content_type and (resp.body or resp.stream is not None):
            self.send_header("Content-Type", resp.content_type)
        for k, v in resp.headers:
            self.send_header(k, v)
        if gz:
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Vary", "Accept-Encoding")
        if resp.close or self.close_connection:
            self.close_connection = True
            self.send_header("Connection", "close")
        body: bytes | None
        if resp.stream is not None:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunks = _gzip_stream(resp.stream, emu.cache) if gz else resp.stream
            if self.command == "HEAD":
                return
            self._write_chunked(chunks, reset_after)
            return
        body = gzip.compress(resp.body, GZIP_LEVEL) if gz else resp.body
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if reset_after is not None:
            self._reset(body[: max(0, min(reset_after, len(body) - 1))])
            return
        if body:
            self.wfile.write(body)

    def _write_chunked(self, chunks: Iterable[bytes], reset_after: int | None) -> None:
        """Send ``chunks`` as chunked frames; the data is written as it is, never copied into
        its frame (a Bulk result block is megabytes)."""
        sent = 0
        for data in chunks:
            if not data:
                continue
            frame = (b"%x\r\n" % len(data), data, b"\r\n")
            size = sum(map(len, frame))
            if reset_after is not None and sent + size > reset_after:
                self._reset(b"".join(frame)[: max(0, reset_after - sent)])
                return
            self.wfile.writelines(frame)
            sent += size
        if reset_after is not None:
            self._reset(b"")
            return
        self.wfile.write(b"0\r\n\r\n")

    def _reset(self, partial: bytes) -> None:
        """Write ``partial`` and abort the TCP connection with RST (SO_LINGER 0)."""
        try:
            if partial:
                self.wfile.write(partial)
            self.wfile.flush()
            self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.request.close()
        except OSError:
            pass
        self.close_connection = True


def _gzip_stream(chunks: Iterable[bytes], cache: BlockCache) -> Iterator[bytes]:
    """One gzip member (RFC 1952), as Salesforce sends, made of each chunk's deflate segment
    (:meth:`.cache.BlockCache.deflated`: compressed once while the data is unchanged)."""
    yield GZIP_HEADER
    crc = size = 0
    for data in chunks:
        if data:
            crc = zlib.crc32(data, crc)
            size += len(data)
            yield cache.deflated(data)
    yield FINAL_EMPTY_BLOCK + struct.pack("<II", crc, size & 0xFFFFFFFF)


def serve(emulator: SalesforceEmulator, host: str, port: int) -> Server:
    return Server((host, port), emulator)


def sleep(seconds: float, stop: Callable[[], bool]) -> None:
    """Sleep in slices so a stopping emulator does not wait for long injected delays."""
    end = time.monotonic() + seconds
    while not stop():
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.05))
