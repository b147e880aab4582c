"""PyTorch ImageNet max-throughput engine: one batch resident on the device, the model run on it in a loop.

What the original ``infer_imagenet_pytorch_max.py`` did (fp32, DataParallel, accuracy recomputed every
iteration), rebuilt to be fast on a modern GPU: the batch is copied to the device once (from pinned memory),
the model runs in bf16/fp16 (weights and inputs cast, not autocast: no per-op casts in the hot loop) or
fp32/tf32, optionally channels_last, ``torch.compile`` and CUDA graphs; the host only launches work and
synchronises at report points and at the end, so the figure is the device's throughput.  Acc@1/Acc@5 come
from the first timed iteration's outputs: the same images every iteration give the same answer.

Weights: a state_dict file (``--weights``), else torchvision's own cache under ``$TORCH_HOME`` when the file is
already there; never a download.  Without either the model is randomly initialised and accuracy is ``None``.
"""

from __future__ import annotations

import functools
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torchvision

PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DEVICES = ("auto", "cuda", "cpu")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
#: Constructor arguments torchvision's own builders set when they load pretrained weights for these models.
PRETRAINED_KWARGS = {"googlenet": {"transform_input": True}, "inception_v3": {"transform_input": True}}


@functools.cache
def architectures() -> tuple[str, ...]:
    """Every classifier in torchvision's registry (not a hand-kept list)."""
    return tuple(torchvision.models.list_models(module=torchvision.models))


def check_architecture(arch: str) -> str:
    if arch not in architectures():
        near = [a for a in architectures() if a.startswith(arch[:4])] or list(architectures())
        raise ValueError(f"unknown architecture {arch!r}; torchvision has: {', '.join(near)}")
    return arch


@dataclass(frozen=True)
class TorchOptions:
    """How to run.  ``None`` means "the default for the device": bf16 + channels_last + compile on CUDA,
    fp32 eager on CPU (bf16 only pays with AMX/avx512_bf16 units; compiling costs minutes there)."""

    arch: str = "resnet50"
    batch: int = 256
    device: str = "auto"
    precision: str | None = None
    channels_last: bool | None = None
    compile: bool | None = None
    compile_mode: str = "default"
    cuda_graphs: bool = False
    weights: str | None = None
    warmup: int = 3
    seed: int = 0
    threads: int | None = None  # CPU threads (torch.set_num_threads); None: torch's default, one per core

    def resolved(self) -> TorchOptions:
        """The options with the device chosen and every ``None`` replaced by that device's default."""
        if self.device not in DEVICES:
            raise ValueError(f"unknown device {self.device!r}; choose one of {', '.join(DEVICES)}")
        device = self.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        elif device == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device cuda: no CUDA device available (torch.cuda.is_available() is False)")
        gpu = device == "cuda"
        precision = self.precision or ("bf16" if gpu else "fp32")
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
        if precision == "tf32" and not gpu:
            raise ValueError("--precision tf32 needs a CUDA device (TensorFloat-32 is a tensor-core format)")
        if self.cuda_graphs and not gpu:
            raise ValueError("--cuda-graphs needs a CUDA device")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads}")
        if self.batch < 1:
            raise ValueError(f"batch size must be at least 1, got {self.batch}")
        if self.compile_mode not in COMPILE_MODES:
            raise ValueError(f"unknown compile mode {self.compile_mode!r}; choose one of {', '.join(COMPILE_MODES)}")
        return TorchOptions(
            arch=check_architecture(self.arch), batch=self.batch, device=device, precision=precision,
            channels_last=gpu if self.channels_last is None else self.channels_last,
            compile=gpu if self.compile is None else self.compile, compile_mode=self.compile_mode,
            cuda_graphs=self.cuda_graphs, weights=self.weights, warmup=max(self.warmup, 1), seed=self.seed,
            threads=self.threads,
        )

    def describe(self) -> str:
        parts = [self.precision or "?", "channels_last" if self.channels_last else "contiguous"]
        if self.compile:
            parts.append("compiled" if self.compile_mode == "default" else f"compiled ({self.compile_mode})")
        else:
            parts.append("eager")
        if self.cuda_graphs:
            parts.append("CUDA graphs")
        return ", ".join(parts)


# --------------------------------------------------------------------------- weights


def cached_weights_file(arch: str) -> Path | None:
    """The file torchvision would have downloaded for ``arch`` (DEFAULT first), if it is already in the hub cache."""
    try:
        enum = torchvision.models.get_model_weights(arch)
    except (ValueError, KeyError):
        return None
    members = [enum.DEFAULT, *(w for w in enum if w is not enum.DEFAULT)]
    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    for weights in members:
        path = checkpoints / Path(weights.url).name
        if path.is_file():
            return path
    return None


def read_state_dict(path: str | Path) -> dict:
    """A state_dict from a file: a plain one, a training checkpoint (``{"state_dict": …}``), or a DataParallel one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several unrelated types for a corrupt or foreign file
        raise ValueError(f"cannot read weights file {path}: {type(err).__name__}: {err}".splitlines()[0]) from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"weights file {path} holds a {type(state).__name__}, not a state_dict")
    return {k.removeprefix("module."): v for k, v in state.items()}


@dataclass
class Model:
    """A built model and where its weights came from (``None``: random initialisation)."""

    module: torch.nn.Module
    arch: str
    weights: str | None


def build_model(arch: str, weights: str | None = None, seed: int = 0) -> Model:
    """The torchvision model in eval mode on the CPU, with ``weights`` or the cached pretrained file when present."""
    check_architecture(arch)
    source = Path(weights) if weights else cached_weights_file(arch)
    state = read_state_dict(source) if source else None
    torch.manual_seed(seed)  # random initialisation is reproducible
    kwargs = PRETRAINED_KWARGS.get(arch, {}) if state is not None else {}
    module = torchvision.models.get_model(arch, weights=None, **kwargs)
    if state is not None:
        try:
            module.load_state_dict(state)
        except RuntimeError as err:
            first = str(err).splitlines()
            raise ValueError(f"weights file {source} does not fit {arch}: {' '.join(first[:2])[:300]}") from None
    return Model(module.eval(), arch, str(source) if source else None)


# --------------------------------------------------------------------------- accuracy


def topk_accuracy(logits: torch.Tensor, targets: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> list[float | None]:
    """Percent of rows whose target is among the top-k logits, for each k; rows with target < 0 are not scored
    (their folder is not an ImageNet-1k class); ``None`` when no row can be scored."""
    scored = targets >= 0
    if not bool(scored.any()):
        return [None for _ in ks]
    logits, targets = logits[scored].float(), targets[scored]
    top = logits.topk(max(ks), dim=1).indices
    hits = top == targets.view(-1, 1)
    return [float(hits[:, :k].any(dim=1).float().mean()) * 100 for k in ks]


# --------------------------------------------------------------------------- the run


@dataclass
class Progress:
    """What a report point tells the user."""

    iteration: int
    images: int
    acc1: float | None
    acc5: float | None


@dataclass
class RunResult:
    """One timed run: ``images`` inferred in ``elapsed_s`` (device work included: synchronised at the end)."""

    images: int
    iterations: int
    elapsed_s: float
    acc1: float | None
    acc5: float | None
    warmup_s: float
    options: TorchOptions
    device_name: str
    peak_memory_mb: float | None
    peak_memory_kind: str
    weights: str | None
    reports: list[Progress] = field(default_factory=list)

    @property
    def images_per_sec(self) -> float:
        return self.images / self.elapsed_s if self.elapsed_s else 0.0

    def summary(self) -> dict:
        """Keys shared with the other paths (``classified``, ``images_per_sec``, ``accuracy`` as a fraction)."""
        o = self.options
        return {
            "classified": self.images, "images": self.images, "iterations": self.iterations,
            "elapsed_s": round(self.elapsed_s, 4), "images_per_sec": round(self.images_per_sec, 2),
            "accuracy": None if self.acc1 is None else self.acc1 / 100,
            "acc1": self.acc1, "acc5": self.acc5, "warmup_s": round(self.warmup_s, 3),
            "arch": o.arch, "batch": o.batch, "device": o.device, "device_name": self.device_name,
            "precision": o.precision, "channels_last": o.channels_last, "compile": o.compile,
            "compile_mode": o.compile_mode if o.compile else None, "cuda_graphs": o.cuda_graphs,
            "weights": self.weights, "peak_memory_mb": self.peak_memory_mb, "peak_memory_kind": self.peak_memory_kind,
            "rejected": 0, "lost": 0, "p50_ms": None, "p99_ms": None,
        }


def use_threads(threads: int | None) -> None:
    """Set torch's CPU thread count; fewer threads than cores avoids OpenMP's collapse (tens of times slower)
    when other processes share the cores.  ``None`` keeps torch's default."""
    if threads:
        torch.set_num_threads(threads)


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    from iotbench.report import machine

    info = machine()
    return f"{info.get('cpu_model', info['processor'])}, {torch.get_num_threads()} threads"


def _set_float32_precision(precision: str) -> None:
    """TF32 on tensor cores only when asked: fp32 means IEEE fp32 matmuls and convolutions."""
    tf32 = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.set_float32_matmul_precision("high" if tf32 else "highest")


class TorchImageNetEngine:
    """Prepares a model and one device-resident batch, then runs the timed loop (``run``).

    ``place`` and ``warmup`` do everything slow (copy, casting, compile, CUDA-graph capture) before the clock.
    One device: the original wrapped the model in DataParallel; one GPU's figure is the comparable unit today.
    """

    name = "torch-imagenet"

    def __init__(self, model: Model, options: TorchOptions):
        self.options = options.resolved()
        self.model = model.arch
        self.weights = model.weights
        self._module = model.module
        self._step: Callable[[], torch.Tensor] | None = None
        self._images: torch.Tensor | None = None
        self._targets: torch.Tensor | None = None
        self.warmup_s = 0.0
        use_threads(self.options.threads)

    # -- preparation

    def place(self, images: torch.Tensor, targets: torch.Tensor) -> None:
        """Copy the (already batch-sized) host batch to the device once, pinned first on CUDA for a DMA copy."""
        o = self.options
        dtype = DTYPES[o.precision]
        host = images.pin_memory() if o.device == "cuda" else images
        fmt = torch.channels_last if o.channels_last else torch.contiguous_format
        self._images = host.to(o.device, non_blocking=True).to(dtype=dtype, memory_format=fmt)
        self._targets = targets.to(o.device, non_blocking=True)

    def warmup(self) -> None:
        """Cast/place the model, compile or capture it, and run it ``warmup`` times (compilation happens here)."""
        if self._images is None:
            raise RuntimeError("place() the batch before warmup()")
        o = self.options
        if o.device == "cuda":
            torch.backends.cudnn.benchmark = True
            _set_float32_precision(o.precision)
        fmt = torch.channels_last if o.channels_last else torch.contiguous_format
        module = self._module.to(device=o.device, dtype=DTYPES[o.precision], memory_format=fmt)
        for p in module.parameters():
            p.requires_grad_(False)
        start = time.perf_counter()
        images = self._images
        with torch.no_grad():
            if o.compile:
                step = _compiled_step(module, images, o)
            elif o.cuda_graphs:
                step = _capture_cuda_graph(module, images)
            else:
                step = functools.partial(module, images)
            # CUDA-graph trees record on the first calls: warm up past them so the clock sees replays only
            for _ in range(max(o.warmup, 3) if o.cuda_graphs else o.warmup):
                step()
            _sync(o.device)
        self._step = step
        self.warmup_s = time.perf_counter() - start

    # -- the timed loop

    def logits(self) -> torch.Tensor:
        """One forward pass's outputs as float32 on the CPU (for checks; not timed)."""
        if self._step is None:
            self.warmup()
        assert self._step is not None
        with torch.no_grad():
            return self._step().float().cpu().clone()

    def _accuracy(self, logits: torch.Tensor) -> list[float | None]:
        """Acc@1/Acc@5 in percent; ``None`` for random weights (a number would pretend to measure something)."""
        if self.weights is None:
            return [None, None]
        return topk_accuracy(logits, self._targets)

    def run(self, duration_s: float, interval: int, on_report: Callable[[Progress], None] | None = None) -> RunResult:
        """Run until ``duration_s`` has passed (checked every iteration on the host, which runs ahead of the
        device by at most the launch queue); report every ``interval`` iterations (the only syncs besides the
        last one).  The first iteration's outputs are kept (cloned: CUDA graphs reuse their output buffer)."""
        if self._step is None:
            self.warmup()
        assert self._step is not None and self._targets is not None
        o = self.options
        interval = max(interval, 1)
        if o.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        reports: list[Progress] = []
        acc: list[float | None] | None = None
        with torch.no_grad():
            _sync(o.device)
            start = time.perf_counter()
            first = self._step().clone()
            iteration = 1
            while True:
                if iteration % interval == 0:
                    if acc is None:
                        acc = self._accuracy(first)  # synchronises (float() of a device tensor)
                    _sync(o.device)
                    reports.append(Progress(iteration, iteration * o.batch, acc[0], acc[1]))
                    if on_report:
                        on_report(reports[-1])
                if time.perf_counter() - start > duration_s:
                    break
                self._step()
                iteration += 1
            _sync(o.device)
            elapsed = time.perf_counter() - start
        if acc is None:
            acc = self._accuracy(first)
        peak, kind = _peak_memory_mb(o.device)
        return RunResult(images=iteration * o.batch, iterations=iteration, elapsed_s=elapsed, acc1=acc[0],
                         acc5=acc[1], warmup_s=self.warmup_s, options=o, device_name=device_name(o.device),
                         peak_memory_mb=peak, peak_memory_kind=kind, weights=self.weights, reports=reports)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _compiled_step(module: torch.nn.Module, images: torch.Tensor, o: TorchOptions) -> Callable[[], torch.Tensor]:
    """``torch.compile`` with inductor's freezing (weights become constants: conv-BN folding, prepacked layouts);
    with ``cuda_graphs`` the default mode becomes ``reduce-overhead`` (inductor's CUDA-graph trees)."""
    import torch._inductor.config as inductor_config

    if hasattr(inductor_config, "freezing"):
        inductor_config.freezing = True
    mode = "reduce-overhead" if o.cuda_graphs and o.compile_mode == "default" else o.compile_mode
    forward = torch.compile(module, mode=None if mode == "default" else mode)
    if mode in ("default", "max-autotune-no-cudagraphs") or o.device != "cuda":
        return functools.partial(forward, images)

    def step() -> torch.Tensor:
        torch.compiler.cudagraph_mark_step_begin()  # each call is a new generation: the last output may be reused
        return forward(images)

    return step


def _capture_cuda_graph(forward: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor):
    """Capture one forward pass into a CUDA graph; replaying it costs one launch per iteration."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):  # warm-up on a side stream, as torch.cuda.graphs requires
            forward(images)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        output = forward(images)

    def replay() -> torch.Tensor:
        graph.replay()
        return output

    return replay


def _peak_memory_mb(device: str) -> tuple[float | None, str]:
    """Peak device memory allocated by tensors on CUDA; the process's peak resident set size on CPU."""
    if device == "cuda":
        return round(torch.cuda.max_memory_allocated() / 2**20, 1), "cuda_max_allocated"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return round(rss / (2**20 if sys.platform == "darwin" else 2**10), 1), "process_max_rss"
