"""A TCP proxy on loopback that cuts connections in the middle of request and response bodies,
at random: what a field app's network does to it.

Each connection is forwarded to ``upstream``; with probability ``cut_probability`` it is given a
byte budget in one direction (the request, up to ``max_budget`` bytes, or the response, up to
1,500: answers are short) after which both
sides are reset (SO_LINGER 0: an RST, as a dropped mobile link looks), whatever is in flight.
The random generator is seeded, so a failing run can be replayed.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
from dataclasses import dataclass, field

from tests.support.serving import HOST, free_port

CHUNK = 16 * 1024


@dataclass
class ChaosStats:
    connections: int = 0
    cut_requests: int = 0
    cut_responses: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def cuts(self) -> int:
        return self.cut_requests + self.cut_responses


class ChaosProxy:
    """``with ChaosProxy(upstream_port) as proxy:`` then talk to ``proxy.base``."""

    def __init__(self, upstream_port: int, *, cut_probability: float = 0.3, max_budget: int = 400_000,
                 seed: int = 12) -> None:
        self.upstream = (HOST, upstream_port)
        self.cut_probability = cut_probability
        self.max_budget = max_budget
        self.random = random.Random(seed)
        self.stats = ChaosStats()
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        self._listener = socket.create_server((HOST, self.port))
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="chaos-proxy", daemon=True)

    def __enter__(self) -> "ChaosProxy":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopped.set()
        self._listener.close()
        self._thread.join(5)

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self.stats.lock:
                self.stats.connections += 1
                cut = self.random.random() < self.cut_probability
                direction = self.random.choice(("request", "response"))
                # answers are short (headers and a little JSON): cut them within their first bytes
                budget = self.random.randint(1, self.max_budget if direction == "request" else 1_500)
            threading.Thread(target=self._serve, args=(client, cut, direction, budget), daemon=True).start()

    def _serve(self, client: socket.socket, cut: bool, direction: str, budget: int) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=30)
        except OSError:
            _reset(client)
            return
        state = {"budget": budget if cut else None, "done": False}
        lock = threading.Lock()

        def pump(source: socket.socket, sink: socket.socket, name: str) -> None:
            try:
                while True:
                    data = source.recv(CHUNK)
                    if not data:
                        sink.shutdown(socket.SHUT_WR)
                        return
                    with lock:
                        if state["done"]:
                            return
                        if state["budget"] is not None and name == direction:
                            if len(data) >= state["budget"]:
                                data = data[: state["budget"]]
                                sink.sendall(data)
                                state["done"] = True
                                with self.stats.lock:
                                    if direction == "request":
                                        self.stats.cut_requests += 1
                                    else:
                                        self.stats.cut_responses += 1
                                _reset(client)
                                _reset(upstream)
                                return
                            state["budget"] -= len(data)
                    sink.sendall(data)
            except OSError:
                with lock:
                    state["done"] = True
                _reset(client)
                _reset(upstream)

        forward = threading.Thread(target=pump, args=(client, upstream, "request"), daemon=True)
        forward.start()
        pump(upstream, client, "response")
        forward.join(60)
        for sock in (client, upstream):
            try:
                sock.close()
            except OSError:
                pass


def _reset(sock: socket.socket) -> None:
    """Drop the connection at once, as a link that fails: shut down first (a close() alone waits
    while another thread is blocked reading the socket, and the peer would notice nothing), then
    close with SO_LINGER 0 (an RST for whatever is still unsent)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
