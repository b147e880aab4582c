"""Engines: the systems under test.  A stream engine turns a decoded batch into predicted classes; a
max-throughput engine runs flat out over data already in place (:mod:`iotbench.engines.contracts`).

An engine knows nothing about sockets, senders or reports (the receiver and the
benchmarks wire those); adding one is one module keeping one of the two contracts, plus one line in
:data:`iotbench.engines.registry.REGISTRY` (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from iotbench.engines.contracts import MaxEngine, StreamEngine  # noqa: F401
from iotbench.engines.registry import REGISTRY, create, engine_class, load_engine_class  # noqa: F401  (one list)

#: The receiver's name for the stream contract.
Engine = StreamEngine


#: name -> "module:Class", imported lazily so that each engine's heavy dependency
#: (TensorFlow, torch, pyspark) is only loaded when that engine is used.  Derived from the one registry.
ENGINES = {name: e.target for name, e in REGISTRY.items()}
