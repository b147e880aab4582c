"""iotbench: how fast, and how correctly, image classifiers keep up with a stream of IoT images."""

__version__ = "0.1.0"
