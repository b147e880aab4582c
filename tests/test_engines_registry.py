"""The engine registry, the two contracts, the result type and the commands that show them."""

from __future__ import annotations

import importlib.util

import pytest

from iotbench.cli import main
from iotbench.engines import contracts
from iotbench.engines.registry import REGISTRY, load
from iotbench.summary import FIXED_KEYS, Summary

STREAM_METHODS = ("warmup", "predict", "describe")
MAX_METHODS = ("prepare", "iterate", "release")


def test_registry_lists_every_engine_family():
    for name in ("null", "keras", "spark-native-max", "spark-bigdl-max", "spark-native-stream",
                 "spark-bigdl-stream", "torch"):
        assert name in REGISTRY, name
    assert {e.contract for e in REGISTRY.values()} == {contracts.STREAM, contracts.MAX}


@pytest.mark.parametrize("name", list(REGISTRY))
def test_each_engine_keeps_its_contract(name):
    entry = REGISTRY[name]
    if entry.unavailable():
        pytest.skip(f"{name}: {entry.unavailable()}")
    cls = load(entry.adapter or entry.target)
    methods = STREAM_METHODS if entry.contract == contracts.STREAM else MAX_METHODS
    missing = [m for m in methods if not callable(getattr(cls, m, None))]
    assert not missing, f"{name} ({cls.__name__}) lacks {missing} of the {entry.contract} contract"


def test_availability_names_the_missing_package():
    from iotbench.engines.registry import EngineEntry

    entry = EngineEntry("x", "m:C", contracts.STREAM, "none", ("no_such_package_iotbench",))
    assert entry.unavailable() == "Python package no_such_package_iotbench not installed"
    assert importlib.util.find_spec("numpy") is not None
    assert REGISTRY["null"].unavailable() is None


def test_engines_command_lists_contract_and_availability(capsys):
    assert main(["engines"]) == 0
    out = capsys.readouterr().out
    for name, entry in REGISTRY.items():
        line = next(line for line in out.splitlines() if line.split()[0] == name)
        assert entry.contract in line.split() and entry.runtime in line
        assert ("yes" in line.split()) == (entry.unavailable() is None)


def test_convert_help_lists_the_converters(capsys):
    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    out = capsys.readouterr().out
    for name in ("cnn", "resnet20", "import-bigdl08"):
        assert name in out


def test_null_engine_is_a_stream_engine():
    from iotbench.engines.null import NullEngine

    assert isinstance(NullEngine(), contracts.StreamEngine)


def test_create_builds_the_registered_class_by_name():
    from iotbench.engines import registry
    from iotbench.engines.null import NullEngine

    engine = registry.create("null")
    assert type(engine) is NullEngine and engine.name == "null"
    assert isinstance(engine, contracts.StreamEngine)
    assert registry.engine_class("null") is NullEngine is registry.load_engine_class("null")
    # the class a name stands for is written in its entry alone (modules that import nothing heavy)
    for name in ("spark-native-max", "spark-bigdl-max", "spark-native-stream", "spark-bigdl-stream"):
        assert registry.engine_class(name) is load(REGISTRY[name].target), name


def test_an_unknown_engine_name_lists_the_registered_ones():
    from iotbench.engines import registry

    with pytest.raises(ValueError, match="unknown engine 'nope'; registered: null, keras"):
        registry.create("nope")


def test_summary_has_every_fixed_key_and_none_for_what_was_not_measured():
    s = Summary.from_run({"classified": 5, "images_per_sec": 2.0, "rejected": 0, "lost": 0}, engine="null",
                         model="-", batch=4, wire="memory", precision="fp32", iterations=3)
    info = s.extra_info()
    assert tuple(info)[:len(FIXED_KEYS)] == FIXED_KEYS
    assert info["rejected"] is None and info["lost"] is None and info["p99_ms"] is None  # in memory: not measured
    assert info["precision"] == "fp32" and info["iterations"] == 3
    assert Summary.from_extra_info(info).extra_info() == info
