"""PyTorch ImageNet max throughput: one batch of validation images resident on the device, classified in a loop.

Keeps the original ``infer_imagenet_pytorch_max.py DIR -a ARCH -b BATCH -d SECONDS -i N`` usage and console lines.
Defaults on a CUDA device: bf16 + channels_last + torch.compile (what a GPU user wants); on a CPU: fp32 eager
(portable: bf16 only pays on CPUs with bf16 units, and compiling costs minutes there).  Weights come from
--weights (a state_dict file) or torchvision's cache under $TORCH_HOME when the file is already there; nothing is
downloaded.  Without weights the model is randomly initialised and accuracy is n/a.
"""

from __future__ import annotations

import argparse
import os
import time

from iotbench.report import timestamp

# No torch import at module level: ``iotbench --help`` and ``iotbench send`` build every command's parser.


def _bool_or_auto(parser: argparse.ArgumentParser, flag: str, help_text: str) -> None:
    parser.add_argument(flag, action=argparse.BooleanOptionalAction, default="auto",
                        help=help_text + "; auto: on with CUDA, off on CPU")


def _auto(value):
    """``"auto"`` (the device decides) becomes None for TorchOptions."""
    return None if value == "auto" else value


def add_torch_arguments(parser: argparse.ArgumentParser, *, arch: str, batch: int, duration: float,
                        arch_help: str = "") -> None:
    parser.add_argument("data", metavar="DIR",
                        help="ImageNet validation images: DIR/val/<wnid>/*.JPEG (the original's layout) or DIR/<wnid>/")
    parser.add_argument("-a", "--arch", metavar="ARCH", default=arch,
                        help="model architecture: any classifier in torchvision.models.list_models("
                             "module=torchvision.models)" + arch_help)
    parser.add_argument("-b", "--batch-size", dest="batch", type=int, default=batch,
                        help="batch size; a folder with fewer images is replicated to fill the batch")
    parser.add_argument("-d", "--duration", type=float, default=duration, help="run duration in seconds")
    parser.add_argument("-i", "--interval", type=int, default=10, help="iterations per print")
    parser.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto",
                        help="auto: cuda when available")
    parser.add_argument("--precision", choices=("auto", "fp32", "tf32", "bf16", "fp16"), default="auto",
                        help="bf16/fp16 cast weights and inputs; tf32 = fp32 on tensor cores (CUDA only); "
                             "auto: bf16 with CUDA, fp32 on CPU")
    _bool_or_auto(parser, "--channels-last", "NHWC memory format")
    _bool_or_auto(parser, "--compile", "torch.compile the model (inductor, freezing)")
    parser.add_argument("--compile-mode", default="default",
                        choices=("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"),
                        help="torch.compile mode (needs --compile; reduce-overhead and max-autotune capture "
                             "CUDA graphs)")
    parser.add_argument("--cuda-graphs", action=argparse.BooleanOptionalAction, default="auto",
                        help="replay the forward pass as a CUDA graph (CUDA only; eager: torch.cuda.graph, with "
                             "--compile: mode reduce-overhead); auto: as the compile mode says, off in eager runs")
    parser.add_argument("--weights", metavar="PATH",
                        help="state_dict file; without it torchvision's cached file under $TORCH_HOME when present, "
                             "else random initialisation and accuracy n/a")
    parser.add_argument("--warmup", type=int, default=3,
                        help="untimed iterations before the test (compilation happens here)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads; without it torch's default, one per core (use fewer when other work "
                             "shares the cores)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random initialisation")
    parser.add_argument("--json", metavar="FILE", help="also write the run's summary as JSON")


def configure(parser: argparse.ArgumentParser) -> None:
    add_torch_arguments(parser, arch="resnet50", batch=256, duration=60.0)


def configure_compat(parser: argparse.ArgumentParser) -> None:
    """``infer_imagenet_pytorch_max DIR -a -b -d -i`` with the original's defaults (resnet50, 256, 600 s, 10)."""
    from iotbench.engines.torch_imagenet import architectures

    add_torch_arguments(parser, arch="resnet50", batch=256, duration=600.0,
                        arch_help=": " + " | ".join(architectures()))


def _print(line: str) -> None:
    print(line, flush=True)


def _acc(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    from iotbench import report
    from iotbench.data import imagenet
    from iotbench.engines.registry import create
    from iotbench.engines.torch_imagenet import TorchOptions, build_model, use_threads

    options = TorchOptions(arch=args.arch, batch=args.batch, device=args.device, precision=_auto(args.precision),
                           channels_last=_auto(args.channels_last), compile=_auto(args.compile),
                           compile_mode=args.compile_mode,
                           cuda_graphs=_auto(args.cuda_graphs), weights=args.weights, warmup=args.warmup,
                           seed=args.seed, threads=args.threads).resolved()  # bad options fail before anything slow
    folder = imagenet.class_dir(args.data)
    use_threads(options.threads)
    duration = f"{args.duration:g}"
    _print(f"Running image classification using pre-trained model {options.arch} with data from {folder}, "
           f"for {duration} seconds, reporting every {args.interval} iterations, with batch_size {options.batch}")

    model = build_model(options.arch, options.weights, seed=options.seed, device=options.device)
    _print("Model loaded")
    if model.weights:
        _print(f"Weights loaded from {model.weights}")
    else:
        cache = os.path.join(_hub_dir(), "checkpoints")
        _print(f"No weights (no --weights, none for {options.arch} in {cache}): random initialisation, accuracy n/a")

    sample = imagenet.load(folder, limit=options.batch)
    _print(f"{len(sample)} images loaded")
    if line := imagenet.skipped_line(sample):
        _print(line)
    if sample.unscored:
        _print(f"{sample.unscored} images are in folders that are not ImageNet-1k wnids: not scored")
    images, targets = sample.images, sample.targets
    if len(sample) < options.batch:
        _print(f"Fewer images than batch_size: each of the {len(sample)} images used "
               f"{options.batch / len(sample):.1f}x to fill the batch of {options.batch}")
        images, targets = imagenet.replicate(images, targets, options.batch)

    engine = create("torch-gpu" if options.device == "cuda" else "torch", model, options)
    engine.place(images, targets)
    engine.warmup()
    first_result_s = (engine.first_result_at or time.perf_counter()) - started
    first = "compile" if options.compile else "capture" if options.cuda_graphs else "first call"
    _print(f"Device {engine.options.device} ({_device_name(engine.options.device)}), {engine.options.describe()}; "
           f"warm-up {options.warmup} iterations in {engine.warmup_s:.1f} sec ({first} {engine.first_call_s:.1f} sec); "
           f"first result {first_result_s:.1f} sec after start")
    if engine.cudagraph_skips:
        _print(f"CUDA graphs not used: inductor declined to capture {engine.cudagraph_skips} graphs "
               f"(TORCH_LOGS=cudagraphs says why)")

    _print(f"{timestamp(millis=True)}: Test started")
    result = engine.run(args.duration, args.interval, on_report=lambda p: _print(
        f"{timestamp(millis=True)}: Iteration {p.iteration}: {p.images} images inferred. "
        f"Acc@1= {_acc(p.acc1)} Acc@5= {_acc(p.acc5)}"))
    _print(f"{timestamp(millis=True)}: Test completed: {result.images} images inferred in {result.elapsed_s:.1f} sec "
           f"or {result.images_per_sec:.1f} images/second")
    if args.json:
        report.write_json(args.json, {"engine": engine.name, "model": engine.model, "data": str(folder),
                                      "distinct_images": len(sample), **result.summary(),
                                      "time_to_first_result_s": round(first_result_s, 3),
                                      "machine": report.machine()})
    return 0


def _hub_dir() -> str:
    import torch

    return torch.hub.get_dir()


def _device_name(device: str) -> str:
    from iotbench.engines.torch_imagenet import device_name

    return device_name(device)

