"""Which address the Spark driver advertises to its executors, and which it binds to.

Why: executors connect back to the driver at the host it advertises.  On loopback (``local[N]``, or a master on
127.0.0.1) that is 127.0.0.1; for a master on another host, 127.0.0.1 would send every executor to *its own*
loopback (Spark then launches executor after executor, each failing to connect).  The right address is the local
one the kernel would use to reach the master: a UDP socket ``connect()`` asks the routing table for it without
sending a packet.  ``--driver-host`` overrides it (a NAT, or several interfaces that route differently).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlparse

LOOPBACK = "127.0.0.1"


def master_hosts(master: str) -> list[str]:
    """The host names of a ``spark://h1:p1,h2:p2`` master ([] for ``local[…]``)."""
    if not master.startswith("spark://"):
        return []
    return [urlparse(f"spark://{hp}").hostname or "" for hp in master[len("spark://"):].split(",")]


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def route_source(host: str, port: int = 7077) -> str:
    """The local address that routes to ``host``: a UDP ``connect()`` picks it, no packet is sent."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.connect((host.strip("[]"), port))
        return s.getsockname()[0]


def driver_address(master: str, override: str | None = None, route=route_source) -> str:
    """The driver's advertised host for ``master``: ``override`` if given; loopback for local masters and masters
    on a loopback address; otherwise the local address that routes to the (first) master host.

    ``route`` is the routing look-up (:func:`route_source`), a parameter so that the choice is testable alone.
    """
    if override:
        return override
    hosts = master_hosts(master)
    if not hosts or all(is_loopback_host(h) for h in hosts):
        return LOOPBACK
    first = next(h for h in hosts if not is_loopback_host(h))
    try:
        return route(first)
    except OSError as err:  # no route: one line, before Spark starts
        raise ConnectionError(f"no local address routes to the Spark master host {first} ({err}); "
                              "give the driver's address with --driver-host") from None


def bind_address(advertised: str) -> str:
    """Where the driver listens: the advertised address itself (never every interface)."""
    return advertised


def parse_conf(pairs: list[str] | None) -> dict[str, str]:
    """``--conf KEY=VALUE`` options (repeatable) as spark-submit reads them: split at the first ``=``."""
    out: dict[str, str] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--conf {pair!r}: expected KEY=VALUE, e.g. --conf spark.executor.memory=4g")
        out[key.strip()] = value
    return out
