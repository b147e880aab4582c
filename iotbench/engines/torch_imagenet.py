"""PyTorch ImageNet max-throughput engine: one batch resident on the device, the model run on it in a loop.

What the original ``infer_imagenet_pytorch_max.py`` did (fp32, DataParallel, accuracy recomputed every
iteration), rebuilt to be fast on a modern GPU: the batch is copied to the device once (from pinned memory),
the model runs in bf16/fp16 (weights and inputs cast, not autocast: no per-op casts in the hot loop) or
fp32/tf32, optionally channels_last, ``torch.compile`` and CUDA graphs; the host only launches work and
synchronises at report points and at the end, so the figure is the device's throughput.  Acc@1/Acc@5 come
from the first timed iteration's outputs: the same images every iteration give the same answer.

Every option either takes effect or is refused with a reason (``TorchOptions.resolved``), and the result records
what ran: CUDA graphs that inductor declined to capture are reported as not used, with the count.  The process-wide
settings a run needs (cudnn autotuning, TF32, inductor freezing, CPU threads) hold only while the engine works
(``torch_settings``) and are restored after, so one case's settings never leak into the next.

Weights: a state_dict file (``--weights``), else torchvision's own cache under ``$TORCH_HOME`` when the file is
already there; never a download.  Without either the model is randomly initialised and accuracy is ``None``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import resource
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torchvision

PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DEVICES = ("auto", "cuda", "cpu")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
#: torch.compile modes that capture CUDA graphs (inductor's CUDA-graph trees) on a CUDA device.
GRAPH_MODES = ("reduce-overhead", "max-autotune")
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
    fp32 eager on CPU (bf16 only pays with AMX/avx512_bf16 units; compiling costs minutes there).
    ``cuda_graphs=None`` means "as the compile mode says": on with ``reduce-overhead``/``max-autotune``, else off."""

    arch: str = "resnet50"
    batch: int = 256
    device: str = "auto"
    precision: str | None = None
    channels_last: bool | None = None
    compile: bool | None = None
    compile_mode: str = "default"
    cuda_graphs: bool | None = None
    weights: str | None = None
    warmup: int = 3
    seed: int = 0
    threads: int | None = None  # CPU threads (torch.set_num_threads); None: torch's default, one per core

    def resolved(self, cuda_available: bool | None = None) -> TorchOptions:
        """The options with the device chosen and every ``None`` replaced by what will run; a combination that
        would not take effect as asked raises ``ValueError`` with the reason (one line, for the CLI).

        ``compile_mode`` becomes the mode torch.compile gets (``reduce-overhead`` for CUDA graphs with the
        default mode) and ``cuda_graphs`` whether graphs are captured.  ``cuda_available`` overrides the
        probe (to check a GPU configuration's resolution on a machine without one)."""
        if self.device not in DEVICES:
            raise ValueError(f"unknown device {self.device!r}; choose one of {', '.join(DEVICES)}")
        has_cuda = torch.cuda.is_available() if cuda_available is None else cuda_available
        device = self.device
        if device == "auto":
            device = "cuda" if has_cuda else "cpu"
        elif device == "cuda" and not has_cuda:
            raise ValueError("--device cuda: no CUDA device available (torch.cuda.is_available() is False)")
        gpu = device == "cuda"
        precision = self.precision or ("bf16" if gpu else "fp32")
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
        if precision == "tf32" and not gpu:
            raise ValueError("--precision tf32 needs a CUDA device (TensorFloat-32 is a tensor-core format)")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads}")
        if self.batch < 1:
            raise ValueError(f"batch size must be at least 1, got {self.batch}")
        compile_ = gpu if self.compile is None else self.compile
        mode, graphs = _resolve_graphs(self.compile_mode, compile_, self.cuda_graphs, gpu)
        return TorchOptions(
            arch=check_architecture(self.arch), batch=self.batch, device=device, precision=precision,
            channels_last=gpu if self.channels_last is None else self.channels_last,
            compile=compile_, compile_mode=mode, cuda_graphs=graphs, weights=self.weights,
            warmup=max(self.warmup, 1), seed=self.seed, threads=self.threads,
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


def _resolve_graphs(mode: str, compile_: bool, graphs: bool | None, gpu: bool) -> tuple[str, bool]:
    """``(compile mode, CUDA graphs)`` that will really run, or ``ValueError`` naming the contradiction."""
    if mode not in COMPILE_MODES:
        raise ValueError(f"unknown compile mode {mode!r}; choose one of {', '.join(COMPILE_MODES)}")
    if graphs and not gpu:
        raise ValueError("--cuda-graphs needs a CUDA device")
    if not compile_:
        if mode != "default":
            raise ValueError(f"--compile-mode {mode} needs --compile (torch.compile is off"
                             f"{' by default on CPU' if not gpu else ''}): an eager run has no compile mode")
        return "default", bool(graphs)  # eager: graphs captured by torch.cuda.graph
    if mode == "reduce-overhead" and not gpu:
        raise ValueError("--compile-mode reduce-overhead captures CUDA graphs, which needs a CUDA device "
                         "(on CPU it would run as the default mode)")
    if mode in GRAPH_MODES and gpu:
        if graphs is False:
            other = "default" if mode == "reduce-overhead" else "max-autotune-no-cudagraphs"
            raise ValueError(f"--no-cuda-graphs contradicts --compile-mode {mode}, which captures CUDA graphs; "
                             f"use --compile-mode {other}")
        return mode, True
    if mode == "max-autotune-no-cudagraphs" and graphs:
        raise ValueError("--cuda-graphs contradicts --compile-mode max-autotune-no-cudagraphs; use --compile-mode "
                         "max-autotune (autotuning with CUDA graphs) or reduce-overhead")
    if mode == "default" and graphs:
        return "reduce-overhead", True  # inductor's CUDA-graph trees: the compiled way to replay graphs
    return mode, False


@contextlib.contextmanager
def torch_settings(device: str, precision: str, compile_: bool, threads: int | None) -> Iterator[None]:
    """Apply the process-wide settings a run needs, and restore the previous values on exit (also on error).

    CUDA: cudnn autotuning (one batch shape, so the search pays once) and TF32 only for ``tf32`` (fp32 means
    IEEE fp32 matmuls and convolutions); compile: inductor's freezing (weights become constants: conv-BN
    folding, prepacked layouts); CPU: the thread count when given.  Without restoring, the next case in the
    same process (a benchmark session, a notebook) would run with this one's settings."""
    saved_threads = torch.get_num_threads()
    saved_cuda = (torch.get_float32_matmul_precision(), torch.backends.cuda.matmul.allow_tf32,
                  torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark)
    with contextlib.ExitStack() as stack:
        try:
            if threads:
                torch.set_num_threads(threads)
            if device == "cuda":
                tf32 = precision == "tf32"
                torch.set_float32_matmul_precision("high" if tf32 else "highest")
                torch.backends.cuda.matmul.allow_tf32 = tf32
                torch.backends.cudnn.allow_tf32 = tf32
                torch.backends.cudnn.benchmark = True
            if compile_:
                import torch._inductor.config as inductor_config

                if hasattr(inductor_config, "freezing"):
                    stack.enter_context(inductor_config.patch(freezing=True))
            yield
        finally:
            if threads and torch.get_num_threads() != saved_threads:
                torch.set_num_threads(saved_threads)
            matmul_precision, matmul_tf32, cudnn_tf32, benchmark = saved_cuda
            torch.set_float32_matmul_precision(matmul_precision)  # first: it also sets matmul.allow_tf32
            torch.backends.cuda.matmul.allow_tf32 = matmul_tf32
            torch.backends.cudnn.allow_tf32 = cudnn_tf32
            torch.backends.cudnn.benchmark = benchmark


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


def build_model(arch: str, weights: str | None = None, seed: int = 0, device: str = "cpu") -> Model:
    """The torchvision model in eval mode with ``weights`` or the cached pretrained file when present.

    ``device="cuda"`` builds (and randomly initialises) the model on the GPU directly: initialising a 600M-parameter
    model on the host takes seconds that a registry sweep on a rented GPU should not spend."""
    check_architecture(arch)
    source = Path(weights) if weights else cached_weights_file(arch)
    state = read_state_dict(source) if source else None
    torch.manual_seed(seed)  # random initialisation is reproducible (seeds the CUDA generators too)
    kwargs = PRETRAINED_KWARGS.get(arch, {}) if state is not None else {}
    with torch.device(device):
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
    """One timed run: ``images`` inferred in ``elapsed_s`` (device work included: synchronised at the end).

    ``options`` are what ran (resolved; ``cuda_graphs`` False when inductor declined to capture, see
    ``cudagraph_skips``); ``first_call_s`` is the warm-up's first forward pass, synchronised: with torch.compile
    it is the compile time (plus one pass), with eager CUDA graphs the capture."""

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
    first_call_s: float | None = None
    cudagraph_skips: int | None = None

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
            "cudagraph_skips": self.cudagraph_skips,
            "compile_s": _round(self.first_call_s, 3) if o.compile else None,
            "first_call_s": _round(self.first_call_s, 3), "threads": o.threads,
            "weights": self.weights, "random_init": self.weights is None,
            "peak_memory_mb": self.peak_memory_mb, "peak_memory_kind": self.peak_memory_kind,
            "rejected": 0, "lost": 0, "p50_ms": None, "p99_ms": None,
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def use_threads(threads: int | None) -> None:
    """Set torch's CPU thread count for the whole process (the CLI, which runs one case); fewer threads than
    cores avoids OpenMP's collapse (tens of times slower) when other processes share the cores.  ``None`` keeps
    torch's default.  The engine itself sets threads only inside ``torch_settings``."""
    if threads:
        torch.set_num_threads(threads)


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    from iotbench.report import machine

    info = machine()
    return f"{info.get('cpu_model', info['processor'])}, {torch.get_num_threads()} threads"


class TorchImageNetEngine:
    """Prepares a model and one device-resident batch, then runs the timed loop (``run``).

    ``place`` and ``warmup`` do everything slow (copy, casting, compile, CUDA-graph capture) before the clock.
    One device: the original wrapped the model in DataParallel; one GPU's figure is the comparable unit today.
    ``warmup``, ``logits`` and ``run`` each hold ``torch_settings`` while they work: nothing global outlives them.
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
        self.first_call_s: float | None = None
        #: ``time.perf_counter()`` when the first result existed (end of the first call): time to first result
        self.first_result_at: float | None = None
        self.cudagraph_skips: int | None = None

    def settings(self) -> contextlib.AbstractContextManager[None]:
        """The process-wide settings of this engine's options, restored on exit."""
        o = self.options
        return torch_settings(o.device, o.precision, bool(o.compile), o.threads)

    # -- preparation

    def place(self, images: torch.Tensor, targets: torch.Tensor) -> None:
        """Copy the (already batch-sized) host batch to the device once, pinned first on CUDA for a DMA copy."""
        o = self.options
        dtype = DTYPES[o.precision]
        host = images.pin_memory() if o.device == "cuda" and images.device.type == "cpu" else images
        fmt = torch.channels_last if o.channels_last else torch.contiguous_format
        self._images = host.to(o.device, non_blocking=True).to(dtype=dtype, memory_format=fmt)
        self._targets = targets.to(o.device, non_blocking=True)

    def warmup(self) -> None:
        """Cast/place the model, compile or capture it, and run it ``warmup`` times (compilation happens here).

        The first call is timed on its own (synchronised): ``first_call_s``, the compile or capture time."""
        if self._images is None:
            raise RuntimeError("place() the batch before warmup()")
        o = self.options
        with self.settings(), torch.no_grad():
            fmt = torch.channels_last if o.channels_last else torch.contiguous_format
            module = self._module.to(device=o.device, dtype=DTYPES[o.precision], memory_format=fmt)
            for p in module.parameters():
                p.requires_grad_(False)
            skips_before = _cudagraph_skips()
            start = time.perf_counter()
            images = self._images
            if o.compile:
                step = _compiled_step(module, images, o)
            elif o.cuda_graphs:
                step = _capture_cuda_graph(module, images)
            else:
                step = functools.partial(module, images)
            step()
            _sync(o.device)
            self.first_result_at = time.perf_counter()
            self.first_call_s = self.first_result_at - start
            # CUDA-graph trees record on the first calls: warm up past them so the clock sees replays only
            for _ in range((max(o.warmup, 3) if o.cuda_graphs else o.warmup) - 1):
                step()
            _sync(o.device)
            self.warmup_s = time.perf_counter() - start
        self._step = step
        if o.compile and o.cuda_graphs:
            self.cudagraph_skips = _cudagraph_skips() - skips_before
            if self.cudagraph_skips:  # inductor ran the graph without capture: record what ran
                self.options = dataclasses.replace(o, cuda_graphs=False)

    # -- the timed loop

    def logits(self) -> torch.Tensor:
        """One forward pass's outputs as float32 on the CPU (for checks; not timed)."""
        if self._step is None:
            self.warmup()
        assert self._step is not None
        with self.settings(), torch.no_grad():
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
        with self.settings(), torch.no_grad():
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
            name = device_name(o.device)
        if acc is None:
            acc = self._accuracy(first)
        peak, kind = _peak_memory_mb(o.device)
        return RunResult(images=iteration * o.batch, iterations=iteration, elapsed_s=elapsed, acc1=acc[0],
                         acc5=acc[1], warmup_s=self.warmup_s, options=o, device_name=name,
                         peak_memory_mb=peak, peak_memory_kind=kind, weights=self.weights, reports=reports,
                         first_call_s=self.first_call_s, cudagraph_skips=self.cudagraph_skips)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _cudagraph_skips() -> int:
    """How many graphs inductor has declined to capture as CUDA graphs in this process (its own counter)."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:  # a torch without dynamo: nothing was compiled
        return 0
    return int(counters["inductor"]["cudagraph_skips"])


def _compiled_step(module: torch.nn.Module, images: torch.Tensor, o: TorchOptions) -> Callable[[], torch.Tensor]:
    """``torch.compile`` in the resolved mode (``reduce-overhead`` when CUDA graphs were asked for with the default
    mode); inductor's freezing comes from ``torch_settings``.  Static shapes: one batch size per engine."""
    mode = None if o.compile_mode == "default" else o.compile_mode
    forward = torch.compile(module, mode=mode, dynamic=False)
    if not o.cuda_graphs:
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
        for _ in range(3):  # warm-up on a side stream, as torch.cuda.graphs requires (cudnn autotunes here)
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
