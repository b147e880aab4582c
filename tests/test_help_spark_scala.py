"""Help and flag checks of the Spark and Scala commands: what a new user reads first, and what is refused.

One default per option, none on required ones, no reST markup; ``-i``/``-r`` say what they mean where they
differ from ``iotbench send -i`` (a rate) and ``iotbench infer keras -r`` (images); the BigDL files are asked
for only with ``--engine bigdl``; flag combinations that contradict each other are refused with a reason.
"""

from __future__ import annotations

import argparse
import re

import pytest

from iotbench.cli import build_parser

COMMANDS = [["infer", "spark-max"], ["infer", "spark-stream"], ["infer", "scala-stream"],
            ["infer", "scala-imagenet-max"], ["scala"], ["scala", "build"], ["scala", "send"],
            ["scala", "import-bigdl08"], ["train"]]


def help_text(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit):
        build_parser().parse_args([*argv, "--help"])
    return capsys.readouterr().out


def option_helps(text: str) -> dict[str, str]:
    """Each option's help, joined over its wrapped lines, keyed by its first flag."""
    out: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        m = re.match(r"^  (-{1,2}[\w-]+)", line)
        if m:
            current = m.group(1)
            out[current] = line
        elif current and line.startswith("    "):
            out[current] += " " + line.strip()
        else:
            current = None
    return {k: re.sub(r"\s+", " ", v) for k, v in out.items()}


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_help_has_one_default_per_option_and_no_markup(argv, capsys):
    text = help_text(argv, capsys)
    assert "``" not in text and "(default: None)" not in text and "../shared" not in text
    for help_line in option_helps(text).values():
        assert help_line.lower().count("default") <= 1 or "(default 64)" in help_line, help_line


@pytest.mark.parametrize("argv,flag,says", [
    (["infer", "spark-stream"], "-i", "here -i is a host"),
    (["infer", "spark-stream"], "-r", "here -r is seconds"),
    (["infer", "scala-stream"], "-i", "here -i is a host"),
    (["infer", "scala-stream"], "-r", "here -r is seconds"),
    (["scala", "send"], "-i", "a rate"),
])
def test_a_letter_that_means_something_else_here_says_so(argv, flag, says, capsys):
    assert says in option_helps(help_text(argv, capsys))[flag]


def _description(text: str) -> str:
    """The first paragraph after the usage lines."""
    return text.split("\n\n")[1].strip()


def test_scala_build_has_its_own_description(capsys):
    parent, build = help_text(["scala"], capsys), help_text(["scala", "build"], capsys)
    assert _description(parent) != _description(build) and "Compile" in _description(build)


def parse_compat(module, argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    module.configure_compat(p)
    return p.parse_args(argv)


@pytest.mark.parametrize("name", ["spark_max", "spark_stream"])
def test_original_names_need_bigdl_files_for_bigdl_only(name, capsys):
    import importlib

    from iotbench.commands.spark_max import check_model_options

    module = importlib.import_module(f"iotbench.commands.{name}")
    with pytest.raises(ValueError, match="needs both -md/--modelDefsPath and -mw"):
        check_model_options(parse_compat(module, []))
    native = parse_compat(module, ["--engine", "native"])
    check_model_options(native)  # no BigDL files asked for
    assert native.model.endswith("cnn.keras") and native.model_defs is None
    with pytest.raises(ValueError, match="not used by --engine native"):
        check_model_options(parse_compat(module, ["--engine", "native", "-md", "a", "-mw", "b"]))
    with pytest.raises(ValueError, match="-m names the Keras model of --engine native"):
        check_model_options(parse_compat(module, ["-md", "a", "-mw", "b", "-m", "c.keras"]))
    given = parse_compat(module, ["-md", "a", "-mw", "b"])
    check_model_options(given)
    assert (given.model_defs, given.model_weights) == ("a", "b")
    p = argparse.ArgumentParser()
    module.configure_compat(p)
    p.print_help()
    assert "required with --engine bigdl" in capsys.readouterr().out


def test_new_cli_defaults_the_bigdl_files():
    from iotbench.commands.spark_max import check_model_options

    args = build_parser().parse_args(["infer", "spark-max"])
    check_model_options(args)
    assert args.model_defs.endswith("bigdl_cnn.bigdl") and args.model_weights.endswith("bigdl_cnn.bin")


@pytest.mark.parametrize("path", ["spark-max", "spark-stream"])
def test_bigdl_engine_reaches_every_jvm_and_belongs_to_bigdl_only(path):
    """--bigdl-engine mkldnn: a launch option of the driver and executor JVMs (BigDL reads it once per JVM), the
    classifier told which engine to expect; refused in one line with --engine native."""
    from iotbench.commands.spark_options import check_model_options, make_classifier, settings
    from iotbench.spark import spark_conf_items

    args = build_parser().parse_args(["infer", path, "--bigdl-engine", "mkldnn"])
    check_model_options(args)
    items = spark_conf_items(settings(args, "x"))
    for key in ("spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions"):
        assert "-Dbigdl.engineType=mkldnn" in items[key].split()
    assert make_classifier(args).bigdl_engine == "mkldnn"
    default = build_parser().parse_args(["infer", path])
    check_model_options(default)
    assert "bigdl.engineType" not in " ".join(spark_conf_items(settings(default, "x")).values())
    native = build_parser().parse_args(["infer", path, "--engine", "native", "--bigdl-engine", "mkldnn"])
    with pytest.raises(ValueError, match="--bigdl-engine mkldnn: BigDL's engine is for --engine bigdl"):
        check_model_options(native)


def test_unknown_bigdl_engine_is_refused_before_any_jvm():
    from iotbench.spark import SparkSettings, spark_conf_items

    with pytest.raises(ValueError, match="unknown BigDL engine 'int8'; choose from mklblas, mkldnn"):
        spark_conf_items(SparkSettings(bigdl_engine="int8"))


@pytest.mark.parametrize("argv,message", [
    (["infer", "spark-stream", "--api", "structured", "--max-rate", "100"], "--max-rate"),
    (["infer", "spark-stream", "--empty-intervals", "0"], "--empty-intervals"),
    (["infer", "scala-stream", "--max-rate", "100", "--initial-rate", "500"], "--initial-rate 500 is above"),
    (["infer", "scala-imagenet-max", "-f", "x", "-m", "m.model", "--depth", "18"], "--depth"),
])
def test_contradictory_flags_are_refused_with_a_reason(argv, message):
    args = build_parser().parse_args(argv)
    with pytest.raises(ValueError, match=re.escape(message)):
        args.func(args)
