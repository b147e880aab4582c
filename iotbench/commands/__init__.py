"""One module per ``iotbench infer`` path: ``configure(parser)`` and ``run(args) -> int``.

Modules import their heavy dependencies (TensorFlow, torch, pyspark) inside ``run``, so
that ``iotbench --help`` stays instant and works with only the base install.
"""
