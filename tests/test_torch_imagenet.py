"""PyTorch ImageNet path: wnid → ImageNet-1k index, loading, scoring, the engine's variants, the original's CLI."""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from iotbench.data import imagenet  # noqa: E402
from iotbench.engines.torch_imagenet import (  # noqa: E402
    TorchImageNetEngine,
    TorchOptions,
    build_model,
    read_state_dict,
    topk_accuracy,
    torch_settings,
)

pytestmark = pytest.mark.torch

CATEGORIES = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
SMALL = "mobilenet_v3_small"  # the cheapest torchvision classifier: most engine checks use it
#: One CPU thread per test process: CI runs tests with xdist on 2 cores, and oversubscribed OpenMP threads
#: make torch tens of times slower.
THREADS = 1


def _norm(name: str) -> str:
    return name.replace("_", " ").lower()


# --------------------------------------------------------------------------- wnid -> ImageNet-1k index


def test_synsets_are_the_1000_sorted_wnids():
    wnids = imagenet.synsets()
    assert len(wnids) == len(set(wnids)) == 1000
    assert list(wnids) == sorted(wnids)


@pytest.mark.parametrize(("wnid", "index", "name"), [
    ("n01440764", 0, "tench"), ("n01443537", 1, "goldfish"), ("n01484850", 2, "great white shark"),
    ("n02085620", 151, "Chihuahua"), ("n02123045", 281, "tabby"), ("n04037443", 751, "racer"),
    ("n15075141", 999, "toilet tissue"),
])
def test_known_wnids_map_to_torchvision_categories(wnid, index, name):
    assert imagenet.class_index(wnid) == index
    assert CATEGORIES[index] == name


def test_unknown_folder_is_not_scored():
    assert imagenet.class_index("n99999999") == -1
    assert imagenet.class_index("misc") == -1


def test_every_val256_folder_maps_to_the_torchvision_category_of_its_file_name(imagenet_sample):
    """val256/<wnid>/<wnid>_<name>.JPEG holds all 1,000 classes; the name in the file must be the category
    torchvision's metadata lists at the mapped index (where torchvision disambiguates, e.g. 'crane bird', a prefix)."""
    root = imagenet_sample / "val256"
    if not root.is_dir():
        pytest.skip(f"{root} not found")
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    assert len(folders) == 1000
    wrong = []
    for folder in folders:
        name = next(folder.iterdir()).stem[len(folder.name) + 1:]
        category = CATEGORIES[imagenet.class_index(folder.name)]
        if not _norm(category).startswith(_norm(name)):
            wrong.append((folder.name, name, category))
    assert not wrong


def test_subset_folder_index_is_not_the_imagenet_index(imagenet_sample):
    """The 200-class sample holds every fifth class: the k-th folder is ImageNet class 5k, not k."""
    folders = sorted(p.name for p in (imagenet_sample / "val").iterdir() if p.is_dir())
    assert [imagenet.class_index(w) for w in folders] == list(range(0, 1000, 5))
    for k in (1, 37, 199):
        stem = next((imagenet_sample / "val" / folders[k]).iterdir()).stem
        assert _norm(CATEGORIES[5 * k]).startswith(_norm(stem[len(folders[k]) + 1:]))


# --------------------------------------------------------------------------- folders and decoding


def test_class_dir_accepts_the_original_layout_class_folders_and_val256(imagenet_sample, tmp_path):
    assert imagenet.class_dir(imagenet_sample) == imagenet_sample / "val"
    assert imagenet.class_dir(imagenet_sample / "val") == imagenet_sample / "val"
    assert imagenet.class_dir(imagenet_sample / "val256") == imagenet_sample / "val256"
    with pytest.raises(FileNotFoundError, match="no ImageNet class folders"):
        imagenet.class_dir(tmp_path)
    with pytest.raises(FileNotFoundError, match="not found"):
        imagenet.class_dir(tmp_path / "absent")


def test_load_decodes_in_imagefolder_order_with_imagenet_targets(imagenet_sample):
    sample = imagenet.load(imagenet_sample, limit=4)
    assert tuple(sample.images.shape) == (4, 3, 224, 224)
    assert sample.images.dtype == torch.float32
    assert sample.targets.tolist() == [0, 5, 10, 15]
    assert sample.found == 200 and sample.unscored == 0 and sample.skipped_count == 0
    # normalised with ImageNet mean/std: values span roughly [-2.1, 2.6], not [0, 1] or [0, 255]
    assert -2.2 < float(sample.images.min()) < -1.0 and 1.5 < float(sample.images.max()) < 2.7
    images, targets = imagenet.replicate(sample.images, sample.targets, 10)
    assert targets.tolist() == [0, 5, 10, 15, 0, 5, 10, 15, 0, 5]
    assert torch.equal(images[4], sample.images[0])


def test_unreadable_images_are_skipped_and_counted(imagenet_sample, tmp_path):
    tench = next((imagenet_sample / "val" / "n01440764").iterdir())
    (tmp_path / "n01440764").mkdir()
    shutil.copy(tench, tmp_path / "n01440764" / "a.JPEG")
    (tmp_path / "n01440764" / "b.JPEG").write_bytes(b"not a jpeg")
    (tmp_path / "n01440764" / "notes.txt").write_text("ignored: not an image extension")
    (tmp_path / "n99999999").mkdir()
    shutil.copy(tench, tmp_path / "n99999999" / "c.jpg")
    sample = imagenet.load(tmp_path, limit=10)
    assert len(sample) == 2 and sample.found == 3
    assert sample.targets.tolist() == [0, -1] and sample.unscored == 1
    assert sample.skipped_count == 1
    line = imagenet.skipped_line(sample)
    assert line is not None and line.startswith("Skipped 1 unreadable image files") and "b.JPEG" in line
    (tmp_path / "n01440764" / "a.JPEG").write_bytes(b"")
    (tmp_path / "n99999999" / "c.jpg").unlink()
    with pytest.raises(ValueError, match="none of the 2 image files"):
        imagenet.load(tmp_path, limit=10)


# --------------------------------------------------------------------------- scoring


def test_topk_accuracy_on_logits_with_known_ranks():
    logits = torch.tensor([
        [9.0, 1, 2, 3, 4, 5, 6, 7],  # target 0 ranked 1st
        [9.0, 1, 2, 3, 4, 5, 6, 7],  # target 5 ranked 4th: in top-5, not top-1
        [9.0, 1, 2, 3, 4, 5, 6, 7],  # target 1 ranked 8th
        [9.0, 1, 2, 3, 4, 5, 6, 7],  # target -1: folder not in ImageNet-1k, not scored
    ])
    acc1, acc5 = topk_accuracy(logits, torch.tensor([0, 5, 1, -1]))
    assert acc1 == pytest.approx(100 / 3) and acc5 == pytest.approx(200 / 3)
    assert topk_accuracy(logits.to(torch.bfloat16), torch.tensor([7, 7, 7, 7])) == [0.0, 100.0]
    assert topk_accuracy(logits, torch.tensor([-1, -1, -1, -1])) == [None, None]


def test_state_dict_files_plain_checkpoint_and_dataparallel(tmp_path):
    weights = {"fc.weight": torch.ones(2, 2)}
    torch.save(weights, tmp_path / "plain.pth")
    torch.save({"epoch": 3, "state_dict": {"module.fc.weight": torch.ones(2, 2)}}, tmp_path / "ckpt.pth")
    for name in ("plain.pth", "ckpt.pth"):
        assert list(read_state_dict(tmp_path / name)) == ["fc.weight"]
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        read_state_dict(tmp_path / "absent.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(ValueError, match="cannot read weights file"):
        read_state_dict(tmp_path / "junk.pth")
    with pytest.raises(ValueError, match="does not fit resnet18"):
        build_model("resnet18", str(tmp_path / "plain.pth"))


def test_bad_options_fail_with_one_clear_message():
    with pytest.raises(ValueError, match="unknown architecture 'resnet5'.*resnet50"):
        TorchOptions(arch="resnet5", device="cpu").resolved()
    with pytest.raises(ValueError, match="tf32 needs a CUDA device"):
        TorchOptions(arch="resnet18", device="cpu", precision="tf32").resolved()
    with pytest.raises(ValueError, match="--cuda-graphs needs a CUDA device"):
        TorchOptions(arch="resnet18", device="cpu", cuda_graphs=True).resolved()
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            TorchOptions(arch="resnet18", device="cuda").resolved()


def test_every_option_takes_effect_or_is_refused_with_a_reason():
    """Issue 17's defects: --compile-mode without --compile was ignored; --cuda-graphs with a mode that never
    captures ran without graphs yet reported them."""
    with pytest.raises(ValueError, match="--compile-mode max-autotune needs --compile"):
        TorchOptions(arch="resnet18", device="cpu", compile_mode="max-autotune").resolved()
    with pytest.raises(ValueError, match="--compile-mode reduce-overhead needs --compile"):
        TorchOptions(arch="resnet18", device="cuda", compile=False, compile_mode="reduce-overhead").resolved(True)
    with pytest.raises(ValueError, match="--cuda-graphs contradicts --compile-mode max-autotune-no-cudagraphs"):
        TorchOptions(arch="resnet18", device="cuda", compile=True, cuda_graphs=True,
                     compile_mode="max-autotune-no-cudagraphs").resolved(cuda_available=True)
    with pytest.raises(ValueError, match="--no-cuda-graphs contradicts --compile-mode reduce-overhead"):
        TorchOptions(arch="resnet18", device="cuda", compile=True, cuda_graphs=False,
                     compile_mode="reduce-overhead").resolved(cuda_available=True)
    with pytest.raises(ValueError, match="reduce-overhead captures CUDA graphs, which needs a CUDA device"):
        TorchOptions(arch="resnet18", device="cpu", compile=True, compile_mode="reduce-overhead").resolved()


@pytest.mark.parametrize(("asked", "mode", "graphs", "words"), [
    ({"compile": True, "cuda_graphs": True}, "reduce-overhead", True, "compiled (reduce-overhead), CUDA graphs"),
    ({"compile": True, "compile_mode": "max-autotune"}, "max-autotune", True, "compiled (max-autotune), CUDA graphs"),
    ({"compile": True, "compile_mode": "max-autotune-no-cudagraphs"}, "max-autotune-no-cudagraphs", False,
     "compiled (max-autotune-no-cudagraphs)"),
    ({"compile": True}, "default", False, "compiled"),
    ({"compile": False, "cuda_graphs": True}, "default", True, "eager, CUDA graphs"),
    ({}, "default", False, "compiled"),  # the CUDA default: bf16 + channels_last + compile
])
def test_resolved_options_say_what_will_run_on_a_gpu(asked, mode, graphs, words):
    o = TorchOptions(arch="resnet50", device="cuda", **asked).resolved(cuda_available=True)
    assert (o.compile_mode, o.cuda_graphs) == (mode, graphs)
    assert o.describe().endswith(words) and ("CUDA graphs" in o.describe()) == graphs
    assert o.resolved(cuda_available=True) == o  # resolving what will run changes nothing


def test_the_gpu_headline_case_uses_cuda_graphs():
    """The GPU benchmarks' headline variant compiles and captures CUDA graphs (it never did)."""
    bench = importlib.import_module("benchmarks.test_torch_imagenet")
    plan = bench.plan_for(False, None, None, None)
    o = TorchOptions(arch=bench.HEADLINE_ARCH, device="cuda",
                     **bench.VARIANTS[plan.headline_variant]).resolved(cuda_available=True)
    assert (o.precision, o.channels_last, o.compile, o.cuda_graphs) == ("bf16", True, True, True)
    assert len(plan.headline_batches) >= 3 and set(plan.sweep_archs) == set(bench.architectures())


def _globals() -> tuple:
    import torch._inductor.config as inductor_config

    return (torch.get_num_threads(), torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32,
            torch.backends.cuda.matmul.allow_tf32, torch.get_float32_matmul_precision(), inductor_config.freezing)


def test_torch_settings_are_restored_after_use_and_after_an_error():
    before = _globals()
    with torch_settings("cuda", "tf32", True, threads=1):  # the flags are settable without a GPU
        assert _globals()[:5] == (1, True, True, True, "high") and _globals()[5] is True
    assert _globals() == before
    with pytest.raises(RuntimeError, match="boom"), torch_settings("cuda", "bf16", True, threads=1):
        assert _globals()[1:5] == (True, False, False, "highest")
        raise RuntimeError("boom")
    assert _globals() == before


def test_engine_restores_global_settings_after_warmup_and_run(imagenet_sample, monkeypatch):
    """The engine set cudnn.benchmark, TF32 and inductor freezing (and CPU threads) and never restored them.

    torch.compile is replaced by a recorder that runs the module eagerly (a CPU compile costs minutes): what is
    checked is the settings around the compiled call, not the compiler."""
    import torch._inductor.config as inductor_config

    seen = []

    def recording_compile(module, **kwargs):
        def forward(images):
            seen.append((inductor_config.freezing, torch.get_num_threads(), kwargs))
            return module(images)

        return forward

    monkeypatch.setattr(torch, "compile", recording_compile)
    sample = imagenet.load(imagenet_sample, limit=2)
    threads = 2 if torch.get_num_threads() == 1 else 1
    before = _globals()
    engine = TorchImageNetEngine(build_model(SMALL), TorchOptions(arch=SMALL, batch=2, device="cpu", compile=True,
                                                                  warmup=1, threads=threads))
    engine.place(sample.images, sample.targets)
    engine.warmup()
    assert _globals() == before
    result = engine.run(0.1, interval=10)
    assert _globals() == before
    assert seen and all(s[:2] == (True, threads) for s in seen)  # in force while the model ran
    assert seen[0][2] == {"mode": None, "dynamic": False}
    summary = result.summary()
    assert summary["compile"] is True and summary["cuda_graphs"] is False and summary["threads"] == threads
    assert summary["compile_s"] is not None and summary["compile_s"] == summary["first_call_s"] > 0


def test_cpu_defaults_are_fp32_eager_and_the_registry_lists_the_representative_models():
    o = TorchOptions(arch="resnet18", device="cpu").resolved()
    assert (o.precision, o.channels_last, o.compile, o.cuda_graphs) == ("fp32", False, False, False)
    from iotbench.engines.torch_imagenet import architectures

    assert {"resnet18", "resnet50", "mobilenet_v3_large", "efficientnet_b0", "convnext_tiny",
            "vit_b_16"} <= set(architectures())


# --------------------------------------------------------------------------- the engine's variants agree


def _logits(sample, **options):
    engine = TorchImageNetEngine(build_model(SMALL), TorchOptions(arch=SMALL, batch=len(sample), warmup=1,
                                                                  threads=THREADS, **options))
    engine.place(sample.images, sample.targets)
    return engine.logits()


def _relative(a, b) -> float:
    return float((a - b).abs().max() / b.abs().max())


def test_channels_last_and_bf16_on_cpu_agree_with_fp32(imagenet_sample):
    sample = imagenet.load(imagenet_sample, limit=2)
    reference = _logits(sample, device="cpu")
    assert _relative(_logits(sample, device="cpu", channels_last=True), reference) < 1e-4
    assert _relative(_logits(sample, device="cpu", precision="bf16", channels_last=True), reference) < 0.05


def test_run_counts_iterations_and_reports_at_intervals(imagenet_sample):
    sample = imagenet.load(imagenet_sample, limit=2)
    engine = TorchImageNetEngine(build_model(SMALL), TorchOptions(arch=SMALL, batch=2, device="cpu", warmup=1,
                                                                               threads=THREADS))
    engine.place(sample.images, sample.targets)
    seen = []
    result = engine.run(0.5, interval=2, on_report=seen.append)
    assert result.iterations >= 1 and result.images == 2 * result.iterations
    assert [p.iteration for p in seen] == list(range(2, result.iterations + 1, 2))
    assert result.acc1 is None and result.acc5 is None  # random weights: accuracy n/a, not a number
    summary = result.summary()
    assert summary["accuracy"] is None and summary["device"] == "cpu" and summary["peak_memory_mb"] > 0


@pytest.mark.slow
def test_torch_compile_on_cpu_agrees_with_eager(imagenet_sample, sizes):
    """Inductor on CPU compiles C++ (one to two minutes for the smallest model on 2 cores): only with --full."""
    if not sizes.full:
        pytest.skip("torch.compile on CPU takes minutes: run with --full")
    sample = imagenet.load(imagenet_sample, limit=2)
    assert _relative(_logits(sample, device="cpu", compile=True), _logits(sample, device="cpu")) < 1e-3


@pytest.mark.gpu
@pytest.mark.parametrize("options", [
    {"precision": "bf16", "channels_last": True, "compile": True},
    {"precision": "fp16", "channels_last": True, "compile": False, "cuda_graphs": True},
    {"precision": "bf16", "channels_last": True, "compile": True, "cuda_graphs": True},
    {"precision": "tf32", "channels_last": False, "compile": False},
], ids=["bf16-cl-compile", "fp16-cl-graphs", "bf16-cl-compile-graphs", "tf32"])
def test_gpu_variants_agree_with_fp32_and_run(cuda_device, imagenet_sample, options):
    sample = imagenet.load(imagenet_sample, limit=32)
    reference = _logits(sample, device="cpu")
    engine = TorchImageNetEngine(build_model(SMALL), TorchOptions(arch=SMALL, batch=32, device="cuda", **options))
    engine.place(sample.images, sample.targets)
    assert _relative(engine.logits(), reference) < 0.05
    result = engine.run(1.0, interval=5)
    assert result.iterations >= 1 and result.peak_memory_kind == "cuda_max_allocated" and result.peak_memory_mb > 0
    asked_graphs = bool(options.get("cuda_graphs"))
    assert result.summary()["cuda_graphs"] is asked_graphs and result.cudagraph_skips in (None, 0)
    assert torch.backends.cudnn.benchmark is False  # restored after the run (it was left on)


# --------------------------------------------------------------------------- the original's command line


def _compat(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    code = "import sys; from iotbench.cli import infer_imagenet_pytorch_max as m; sys.exit(m(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args, "--threads", str(THREADS)], capture_output=True,
                          text=True, timeout=timeout)


def test_infer_imagenet_pytorch_max_prints_the_original_lines(imagenet_sample):
    proc = _compat(str(imagenet_sample), "-a", "resnet18", "-b", "16", "-d", "2", "-i", "1", "--warmup", "1")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith(
        f"Running image classification using pre-trained model resnet18 with data from {imagenet_sample / 'val'}, "
        "for 2 seconds, reporting every 1 iterations, with batch_size 16\nModel loaded\n")
    assert "random initialisation, accuracy n/a" in out
    assert re.search(r"^16 images loaded$", out, re.M)
    assert re.search(rf"^{TS}: Test started$", out, re.M)
    iterations = re.findall(rf"^{TS}: Iteration (\d+): (\d+) images inferred\. Acc@1= n/a Acc@5= n/a$", out, re.M)
    assert iterations and all(int(n) == 16 * int(i) for i, n in iterations)
    done = re.search(rf"^{TS}: Test completed: (\d+) images inferred in ([\d.]+) sec or ([\d.]+) images/second$",
                     out, re.M)
    assert done and int(done[1]) == 16 * int(iterations[-1][0]) and float(done[3]) > 0


def test_weights_file_is_loaded_and_scored_against_imagenet_indices(imagenet_sample, tmp_path):
    """A state_dict whose classifier ignores the image and always ranks classes 5, 10, 1, 2, 3 first.

    The first 16 images of the 200-class sample are classes 0, 5, 10, …, 75, so correct wnid → index mapping
    gives Acc@1 = 1/16 (class 5) and Acc@5 = 2/16 (5 and 10); ImageFolder's folder index (0…15) would give 5/16.
    """
    model = build_model(SMALL).module
    head = model.classifier[-1]
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        for rank, cls in enumerate((5, 10, 1, 2, 3)):
            head.bias[cls] = 10.0 - rank
    weights = tmp_path / "fixed_head.pth"
    torch.save(model.state_dict(), weights)
    proc = _compat(str(imagenet_sample), "-a", SMALL, "-b", "16", "-d", "0", "-i", "1", "--warmup", "1",
                   "--weights", str(weights), "--json", str(tmp_path / "run.json"))
    assert proc.returncode == 0, proc.stderr
    assert f"Weights loaded from {weights}" in proc.stdout
    assert re.search(rf"^{TS}: Iteration 1: 16 images inferred\. Acc@1= 6\.250 Acc@5= 12\.500$", proc.stdout, re.M)
    summary = json.loads((tmp_path / "run.json").read_text())
    assert summary["accuracy"] == pytest.approx(0.0625) and summary["acc5"] == pytest.approx(12.5)
    assert summary["weights"] == str(weights)


def test_missing_weights_file_is_one_line_error(imagenet_sample, tmp_path):
    proc = _compat(str(imagenet_sample), "-a", SMALL, "-b", "2", "-d", "0", "--weights", str(tmp_path / "no.pth"))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: weights file not found: {tmp_path / 'no.pth'}"
    assert "Model loaded" not in proc.stdout


def test_iotbench_infer_torch_imagenet_is_wired(imagenet_sample):
    proc = subprocess.run([sys.executable, "-m", "iotbench", "infer", "torch-imagenet", "--help"],
                          capture_output=True, text=True, timeout=120)
    text = " ".join(proc.stdout.split())  # argparse wraps lines
    assert proc.returncode == 0 and "--cuda-graphs" in text and "auto: bf16 with CUDA, fp32 on CPU" in text


def test_compile_mode_without_compile_is_a_one_line_error(imagenet_sample):
    proc = _compat(str(imagenet_sample), "-a", SMALL, "-b", "2", "-d", "0", "--compile-mode", "max-autotune")
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: --compile-mode max-autotune needs --compile")
    assert len(proc.stderr.strip().splitlines()) == 1 and "Model loaded" not in proc.stdout
