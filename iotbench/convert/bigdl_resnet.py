"""A Keras CIFAR-10 ResNet (ResNet20 v1) rebuilt as a BigDL 2.4 graph with the same weights, for the JVM path.

The original Scala classifier ran a ResNet trained with BigDL 0.8 (``bigdl_resnet_model_887``), a file
BigDL 2.4 cannot read (see the README).  Rather than retrain, we transfer the weights of a Keras
ResNet20 v1 layer by layer into ``bigdl.dllib.nn.layer`` modules and save the graph in BigDL's
protobuf format, which Scala loads with ``Module.loadModule``:

- Conv2D: kernel HWIO -> BigDL (group, out, in, kH, kW); ``padding="same"`` -> BigDL's pad -1 (the
  TensorFlow rule: with stride 2 the extra row/column of padding goes at the bottom/right, not both sides).
- BatchNormalization: gamma, beta, moving mean and variance, and Keras's epsilon (1e-3, not BigDL's 1e-5).
- Dense: kernel (in, out) -> Linear weight (out, in); a softmax activation becomes a SoftMax layer.
- Flatten of NHWC Keras tensors: a transpose NCHW -> NHWC first, so the flattened order matches.

**Input.** The graph takes what the stream carries: N x 3 x 32 x 32 RGB floats in 0-255 (CHW, the
Scala receiver writes parsed lines straight into that layout).  The Keras model's own input transform
is baked in as the first two layers: ``MulConstant(1/255)`` and, for ``unit_minus_mean`` models,
``CAdd`` holding minus the per-pixel training mean (the sender's ``-s``).  So the model file is
self-contained: no mean file travels with it.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from iotbench.convert import TOLERANCE, progress, run_module
from iotbench.files import sha256

#: Default files, next to the Keras models.
DEFAULT_OUTPUT = Path("models/bigdl_resnet20.model")


@dataclass
class Conversion:
    model: object  # bigdl.dllib.nn.layer.Model
    layers: int  # Keras layers mapped
    input_transform: str


def start_bigdl(cores: int = 2):
    """A local SparkContext with BigDL's jars, started by :func:`iotbench.spark.start` like every other path."""
    from iotbench.spark import SparkSettings, start

    return start(SparkSettings(master=f"local[{cores}]", app_name="bigdl_resnet"))


def _inbound(layer) -> list[str]:
    """Names of the layers feeding ``layer`` in a functional Keras model."""
    node = layer._inbound_nodes[0]
    return [t._keras_history.operation.name for t in node.input_tensors]


def _activation(name: str | None):
    from bigdl.dllib.nn import layer as bl

    if name in (None, "linear"):
        return None
    if name == "relu":
        return bl.ReLU()
    if name == "softmax":
        return bl.SoftMax()
    raise ValueError(f"unsupported activation {name!r}")


def _conv(layer):
    from bigdl.dllib.nn import layer as bl

    kernel, *rest = layer.get_weights()
    kh, kw, cin, cout = kernel.shape
    sh, sw = layer.strides
    if tuple(layer.dilation_rate) != (1, 1) or layer.groups != 1:
        raise ValueError(f"{layer.name}: dilation and groups are not supported")
    pad = -1 if layer.padding == "same" else 0
    conv = bl.SpatialConvolution(cin, cout, kw, kh, sw, sh, pad, pad, with_bias=bool(rest))
    weight = kernel.transpose(3, 2, 0, 1)[None]  # HWIO -> (group=1, O, I, H, W)
    conv.set_weights([weight.astype(np.float32), *[b.astype(np.float32) for b in rest]])
    return conv


def _batchnorm(layer):
    from bigdl.dllib.nn import layer as bl

    gamma, beta, mean, var = layer.get_weights()
    if not (layer.scale and layer.center):
        raise ValueError(f"{layer.name}: BatchNormalization without scale/center is not supported")
    bn = bl.SpatialBatchNormalization(len(gamma), eps=float(layer.epsilon))
    bn.set_weights([gamma.astype(np.float32), beta.astype(np.float32)])
    bn.set_running_mean(mean.astype(np.float32))
    bn.set_running_std(var.astype(np.float32))  # BigDL's setRunningStd sets the running *variance*
    return bn


def _dense(layer):
    from bigdl.dllib.nn import layer as bl

    kernel, *rest = layer.get_weights()
    lin = bl.Linear(kernel.shape[0], kernel.shape[1], with_bias=bool(rest))
    lin.set_weights([kernel.T.astype(np.float32), *[b.astype(np.float32) for b in rest]])
    return lin


def input_layers(node, transform: str, mean_hwc: np.ndarray | None):
    """The Keras model's input transform on 0-255 CHW input, as BigDL layers (see the module docstring)."""
    from bigdl.dllib.nn import layer as bl

    node = bl.MulConstant(1.0 / 255.0)(node)
    if transform == "unit_minus_mean":
        if mean_hwc is None:
            raise ValueError("a unit_minus_mean model needs the per-pixel mean")
        add = bl.CAdd([3, 32, 32])
        add.set_weights([-np.asarray(mean_hwc, np.float32).transpose(2, 0, 1)])
        node = add(node)
    elif transform != "unit":
        raise ValueError(f"unknown input transform {transform!r}")
    return node


def convert(keras_model, transform: str = "unit_minus_mean", mean_hwc: np.ndarray | None = None) -> Conversion:
    """Rebuild a functional Keras CNN/ResNet as a BigDL graph with the same weights."""
    from bigdl.dllib.nn import layer as bl

    inp = bl.Input()
    nodes: dict[str, object] = {}
    shapes: dict[str, tuple] = {}
    for layer in keras_model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            nodes[layer.name] = input_layers(inp, transform, mean_hwc)
            continue
        src = [nodes[n] for n in _inbound(layer)]
        cfg = layer.get_config()
        if kind == "Conv2D":
            out = _conv(layer)(src[0])
        elif kind == "BatchNormalization":
            out = _batchnorm(layer)(src[0])
        elif kind == "Activation":
            out = _activation(cfg["activation"])(src[0])
        elif kind == "Add":
            out = bl.CAddTable()(src)
        elif kind in ("AveragePooling2D", "MaxPooling2D"):
            (ph, pw), (sh, sw) = layer.pool_size, layer.strides
            if layer.padding != "valid":
                raise ValueError(f"{layer.name}: only 'valid' pooling is supported")
            pool = bl.SpatialAveragePooling if kind == "AveragePooling2D" else bl.SpatialMaxPooling
            out = pool(pw, ph, sw, sh)(src[0])
        elif kind == "Flatten":
            _, h, w, c = layer.input.shape
            x = src[0] if h == w == 1 else bl.Transpose([(2, 3), (3, 4)])(src[0])  # NCHW -> NHWC
            out = bl.Reshape([h * w * c], batch_mode=True)(x)
        elif kind == "Dense":
            out = _dense(layer)(src[0])
            cfg_act = cfg.get("activation")
            if (act := _activation(cfg_act)) is not None:
                out = act(out)
        elif kind == "Dropout":
            out = src[0]
        else:
            raise ValueError(f"unsupported Keras layer {layer.name} ({kind})")
        if kind == "Conv2D" and (act := _activation(cfg.get("activation"))) is not None:
            out = act(out)
        nodes[layer.name] = out
        shapes[layer.name] = tuple(layer.output.shape)
    out_name = keras_model.layers[-1].name
    model = bl.Model([inp], [nodes[out_name]])
    model.evaluate()
    return Conversion(model, len(keras_model.layers), transform)


def to_bigdl_input(images_hwc_uint8: np.ndarray) -> np.ndarray:
    """What the Scala receiver feeds the graph: N x 3 x 32 x 32 float32 RGB in 0-255."""
    return np.ascontiguousarray(np.asarray(images_hwc_uint8, np.float32).transpose(0, 3, 1, 2))


def predict(model, images_hwc_uint8: np.ndarray, batch: int = 100, log=None) -> np.ndarray:
    """Class probabilities of the BigDL graph for uint8 HWC images (local forward passes, in order).

    ``log``: called with a progress line every ~10% (10,000 images take minutes on two cores)."""
    n, outs = len(images_hwc_uint8), []
    step = max(batch, (n // 10) // batch * batch)
    for i in range(0, n, batch):
        outs.append(np.asarray(model.forward(to_bigdl_input(images_hwc_uint8[i:i + batch]))))
        if log and (i + batch) % step == 0 and i + batch < n:
            log(f"BigDL: {i + batch:,} of {n:,} images")
    return np.concatenate(outs)


def correct_bitmap(correct: np.ndarray) -> str:
    """Which test images the model classifies correctly, packed (base64 of np.packbits), for exact subset floors."""
    return base64.b64encode(np.packbits(np.asarray(correct, bool)).tobytes()).decode("ascii")


def expected_accuracy(card: dict, count: int) -> float | None:
    """Accuracy the model must reach on the first ``count`` test images (cycled), from its card's bitmap."""
    bitmap = card.get("correct_bitmap")
    checked = card.get("test_images_checked", 0)
    if not bitmap or not count:
        return None
    correct = np.unpackbits(np.frombuffer(base64.b64decode(bitmap), np.uint8))[:checked].astype(bool)
    if count > checked and checked < 10_000:
        return None
    return float(correct[np.arange(count) % checked].mean())


def drop_crc(path: Path) -> None:
    """Hadoop's local file system writes ``.<name>.crc`` beside a saved model; a stale one would fail the load."""
    (path.parent / f".{path.name}.crc").unlink(missing_ok=True)


def portable(path: Path) -> str:
    """A path as a card records it: relative to the repository root when it can be (../shared/... here)."""
    root = Path(__file__).resolve().parents[2]
    return os.path.relpath(path.resolve(), root) if path.is_absolute() else str(path)


def load_keras(path: Path):
    import keras

    return keras.models.load_model(path, compile=False)


def configure(p) -> None:
    p.add_argument("keras_file", type=Path, help="Keras ResNet (.keras), e.g. models/resnet20.keras")
    p.add_argument("output", type=Path, nargs="?", default=DEFAULT_OUTPUT, help="BigDL 2.4 model file")
    p.add_argument("--check", type=int, default=10_000, help="test images on which to compare with Keras")


def run(args) -> int:
    """Convert, check against Keras (nothing saved beyond ``TOLERANCE``), save, write the sidecar."""
    from iotbench.data import cifar10
    from iotbench.models import preprocess
    from iotbench.models.cards import model_transform

    if not args.keras_file.is_file():
        print(f"error: Keras model not found: {args.keras_file}", file=sys.stderr)
        return 2
    transform = model_transform(args.keras_file)
    kmodel = load_keras(args.keras_file)
    start_bigdl()
    mean = cifar10.pixel_mean() if transform == "unit_minus_mean" else None
    conv = convert(kmodel, transform, mean)
    test = cifar10.load("test")
    n = min(args.check, len(test))
    x, y = test.images[:n], test.labels[:n].astype(np.int64)
    progress(f"Keras: predicting {n:,} test images")
    k_prob = kmodel.predict(preprocess(x, transform), batch_size=500, verbose=0)
    progress(f"BigDL: predicting {n:,} test images")
    b_prob = predict(conv.model, x, log=progress)
    k_cls, b_cls = k_prob.argmax(1), b_prob.argmax(1)
    keras_acc, bigdl_acc = float((k_cls == y).mean()), float((b_cls == y).mean())
    if abs(bigdl_acc - keras_acc) > TOLERANCE:
        print(f"error: BigDL accuracy {bigdl_acc:.4f} differs from Keras {keras_acc:.4f} by more than "
              f"{TOLERANCE * 100:.1f} point; nothing saved", file=sys.stderr)
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    conv.model.saveModel(str(args.output), over_write=True)
    drop_crc(args.output)
    card = {
        "name": args.output.stem, "format": "BigDL 2.4 protobuf (Module.loadModule / Python Model.loadModel)",
        "source": portable(args.keras_file), "source_sha256": sha256(args.keras_file),
        "input": "N x 3 x 32 x 32 float32 RGB in 0-255 (CHW); /255 and minus the per-pixel training mean inside",
        "source_input_transform": transform,
        "test_images_checked": n,
        "test_accuracy": bigdl_acc,
        "test_accuracy_first_2000": float((b_cls[:2000] == y[:2000]).mean()),
        "keras_test_accuracy": keras_acc,
        "agreement_with_keras": float((k_cls == b_cls).mean()),
        "max_abs_prob_diff": float(np.abs(k_prob - b_prob).max()),
        "correct_bitmap": correct_bitmap(b_cls == y),
        "sha256": sha256(args.output),
    }
    args.output.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(card, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m iotbench.convert.bigdl_resnet`` (also ``iotbench convert``)."""
    return run_module(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
