"""Run an in-process stream engine under MLPerf LoadGen and print its summary beside our figures.

``--scenario offline`` issues every sample at once (LoadGen's samples/s beside our in-memory ceiling);
``server`` issues Poisson queries at ``--target-qps`` with a p99 bound of ``--latency-ms`` (LoadGen's
VALID/INVALID and p99 beside our own in-process Poisson run at the same rate); ``singlestream`` issues
one sample at a time.  The SUT drains whatever is queued, up to --batch, like the receiver.
"""

from __future__ import annotations

import argparse

from iotbench.loadgen import SCENARIOS


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", default="keras", choices=("null", "keras", "onnxruntime", "openvino"),
                        help="the in-process engine (keras: -m MODEL through --runtime's module)")
    parser.add_argument("-m", "--model", default="models/cnn.keras", help="model file (not for --engine null)")
    parser.add_argument("--scenario", choices=SCENARIOS, default="offline", help="LoadGen scenario")
    parser.add_argument("--target-qps", type=float, default=None, help="server: offered queries per second")
    parser.add_argument("--latency-ms", type=float, default=100.0, help="server: the p99 bound in ms")
    parser.add_argument("--batch", type=int, default=64, help="most samples the SUT takes from its queue at once")
    parser.add_argument("--samples", type=int, default=2048, help="CIFAR-10 test images in the sample library")
    parser.add_argument("--duration-ms", type=int, default=10_000, help="LoadGen's minimum duration")
    parser.add_argument("--outdir", default=None, help="keep LoadGen's logs here (default: a temporary folder)")


def make_engine(name: str, model: str, batch: int):
    from iotbench.engines.edge_runtime import make_edge_engine
    from iotbench.engines.registry import create

    engine = create("null") if name == "null" else make_edge_engine("tf" if name == "keras" else name, model,
                                                                    batch=batch)
    engine.warmup()
    return engine


def _fmt(value, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def run(args: argparse.Namespace) -> int:
    from iotbench import loadgen

    if args.scenario == "server" and not args.target_qps:
        raise ValueError("--scenario server needs --target-qps")
    if args.samples < 1 or args.batch < 1:
        raise ValueError("--samples and --batch must be at least 1")
    engine = make_engine(args.engine, args.model, args.batch)
    images, labels = loadgen.load_images(args.samples)
    ours = loadgen.ceiling(engine, images, labels, args.batch)
    # LoadGen's offline sample count follows its expected rate: set it above the real one (capped for null)
    expected = min(1.5 * ours, 50_000.0)
    result = loadgen.run_loadgen(engine, images, labels, scenario=args.scenario, batch=args.batch,
                                 target_qps=args.target_qps, latency_ms=args.latency_ms, expected_qps=expected,
                                 duration_ms=args.duration_ms, outdir=args.outdir)
    s = result.summary
    rate = s["samples_per_sec"] or s["completed_samples_per_sec"]
    print(f"LoadGen {args.scenario}: {s['result'] or 'n/a'}; samples/s {_fmt(rate)}, "
          f"p50 {_fmt(s['p50_ms'])} ms, p99 {_fmt(s['p99_ms'])} ms")
    print(f"iotbench: in-memory ceiling {_fmt(ours)} images/s", end="")
    if args.scenario == "server":
        count = max(64, int(args.target_qps * args.duration_ms / 1000))
        mine = loadgen.inprocess_run(engine, images, labels, args.batch, args.target_qps, count)
        print(f"; our Poisson run at {args.target_qps:g}/s: measured {_fmt(mine['images_per_sec'])} images/s, "
              f"p50 {_fmt(mine['p50_ms'])} ms, p99 {_fmt(mine['p99_ms'])} ms (bound {args.latency_ms:g} ms)", end="")
    print(f"; accuracy {'n/a' if result.accuracy is None else f'{100 * result.accuracy:.1f}%'}")
    return 0 if s["valid"] is not False else 1
