"""Root conftest: loads the fixture plugins in ``fixtures/`` for both ``tests/`` and ``benchmarks/``."""

pytest_plugins = [
    "fixtures.options",
    "fixtures.data",
    "fixtures.sender",
    "fixtures.bench",
    "fixtures.cuda",
    "fixtures.scala",
    "fixtures.spark",
    "fixtures.netns",
]
