"""A latency model: the emulator answers as a Salesforce org tens of milliseconds away would.

On loopback every answer is instant, so a client that waits for each page before asking for the
next looks as fast as one that overlaps its requests. Real orgs are a network round trip away and
spend time of their own on every query page and Bulk result chunk; that is where pipelined REST
paging and parallel Bulk downloads pay off, and where a benchmark has to measure them.

The model has three parts, each a delay the server adds before it answers:

* ``rtt`` - one network round trip per request (the request going out, the answer's first byte
  coming back);
* ``page_seconds`` - the server's own time to produce one REST query page (``/query``,
  ``/queryAll`` and their ``nextRecordsUrl`` pages) or one Bulk API 2.0 result chunk
  (``/jobs/query/{id}/results``), before its first byte;
* ``connect_round_trips`` - round trips a new connection costs before its first request: 1 for
  the TCP handshake, plus 1 for a TLS 1.3 handshake (``None``: 1 over http, 2 over https).

The emulator's own work on a query page or a result chunk (building its bytes) counts toward
``page_seconds``: it waits only for what is left of them, then the round trip, so the modelled
server takes the time set, not that plus the emulator's own. Bodies then stream at loopback speed: bandwidth is not modelled, nor
are lost packets. Requests on different connections wait side by side (each connection has its
own server thread), as they would on a real network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Latency"]

_PAGE = re.compile(
    r"^/services/data/v\d+\.\d/(?:(?:query|queryAll)(?:/[^/]+)?|jobs/query/[^/]+/results)/?$"
)


@dataclass(frozen=True)
class Latency:
    """Delays added to every answer; ``Latency()`` (the default) adds none.

    :param rtt: seconds of one network round trip, added to every request.
    :param page_seconds: seconds the server spends on each REST query page or Bulk result chunk.
    :param connect_round_trips: round trips for a new connection's handshakes (``None``: 1 over
        http, 2 over https).
    """

    rtt: float = 0.0
    page_seconds: float = 0.0
    connect_round_trips: int | None = None

    def __post_init__(self) -> None:
        if self.rtt < 0 or self.page_seconds < 0:
            raise ValueError("rtt and page_seconds must be 0 or more seconds")
        if self.connect_round_trips is not None and self.connect_round_trips < 0:
            raise ValueError("connect_round_trips must be 0 or more")

    @property
    def active(self) -> bool:
        return bool(self.rtt or self.page_seconds)

    def connect_delay(self, tls: bool) -> float:
        """Seconds a new connection waits before its first request is read."""
        trips = self.connect_round_trips
        if trips is None:
            trips = 2 if tls else 1
        return trips * self.rtt

    def server_seconds(self, method: str, path: str) -> float:
        """The server's own time on ``method path``: ``page_seconds`` for a query page or a
        result chunk, else none. The round trip (``rtt``) comes on top."""
        if method == "GET" and self.page_seconds and _PAGE.match(path):
            return self.page_seconds
        return 0.0
