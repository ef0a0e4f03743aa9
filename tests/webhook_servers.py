"""Real servers webhook tests talk to: an HTTP receiver and a DNS server, both in threads of
the test process and both programmed by the test."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


@dataclass(frozen=True)
class Call:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when it arrived
    status: int  # what the receiver answered

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    sleep: float = 0.0


class Receiver:
    """An HTTP server that records every POST and answers as told, per path."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or _free_port()
        self.calls: list[Call] = []
        self._answers: dict[str, Answer | Callable[[int], Answer]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def answer(self, path: str, how: Answer | Callable[[int], Answer]) -> None:
        """How to answer `path`; a callable gets how many calls the path had before."""
        self._answers[path] = how

    def calls_to(self, path: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.path == path]

    def wait_for(
        self, path: str, count: int, timeout: float = 60, status: int | None = 200
    ) -> list[Call]:
        """The calls to `path` once there are `count` of them answered `status`."""
        deadline = time.monotonic() + timeout
        while True:
            calls = [c for c in self.calls_to(path) if status is None or c.status == status]
            if len(calls) >= count:
                return calls
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(calls)} of {count} calls to {path} after {timeout}s: "
                    f"{[c.status for c in self.calls_to(path)]}"
                )
            time.sleep(0.05)

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                path = self.path
                with receiver._lock:
                    before = sum(1 for c in receiver.calls if c.path == path)
                how = receiver._answers.get(path, Answer())
                answer = how(before) if callable(how) else how
                if answer.sleep:
                    time.sleep(answer.sleep)
                call = Call(
                    path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    time.monotonic(),
                    answer.status,
                )
                with receiver._lock:
                    receiver.calls.append(call)
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the sender gave up waiting

            def log_message(self, format: str, *args: Any) -> None:
                return None

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening: connections are refused until `start()` again."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class DnsServer:
    """A real DNS server on UDP: names answer with the addresses the test sets, now."""

    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}
        self.questions: list[str] = []
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self._running = True
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while self._running:
            try:
                data, client = self._socket.recvfrom(4096)
            except OSError:
                return
            try:
                query = dns.message.from_wire(data)
            except Exception:
                continue
            response = dns.message.make_response(query)
            response.flags |= dns.flags.AA
            question = query.question[0]
            name = question.name.to_text().rstrip(".").lower()
            self.questions.append(name)
            addresses = self.records.get(name)
            if addresses is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
            else:
                kind = "AAAA" if question.rdtype == dns.rdatatype.AAAA else "A"
                matching = [a for a in addresses if (":" in a) == (kind == "AAAA")]
                if matching:
                    response.answer.append(
                        dns.rrset.from_text_list(
                            question.name, 0, dns.rdataclass.IN, kind, matching
                        )
                    )
            self._socket.sendto(response.to_wire(), client)

    def close(self) -> None:
        self._running = False
        self._socket.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
