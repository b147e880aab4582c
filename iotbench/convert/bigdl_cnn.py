"""Transfer a trained Keras Sequential CNN into BigDL's Keras-API and save it in BigDL's format.

    iotbench convert cnn                              # models/cnn.keras -> models/bigdl_cnn.{bigdl,bin,json}
    iotbench convert cnn --keras X.keras --out models/bigdl_x

Why a twin and not BigDL's own Keras loader: BigDL 2.4 reads Keras 1.2 JSON/HDF5 only, our
models are Keras 3 ``.keras`` files.  The twin is built layer for layer (Conv2D, MaxPooling2D,
Dropout, Flatten, Dense) in BigDL's default channels-first layout (NCHW, ``dim_ordering="th"``),
which its MKL convolutions run natively; the weights are permuted accordingly:

- Conv2D kernel ``(kh, kw, in, out)`` -> ``(1, out, in, kh, kw)`` (BigDL keeps a group axis);
- the first Dense after Flatten: Keras flattens ``(h, w, c)``, BigDL ``(c, h, w)``, so the rows of
  its kernel are permuted from HWC to CHW order before the ``(in, out)`` -> ``(out, in)`` transpose;
- other Dense kernels are transposed.

The result is checked on the whole CIFAR-10 test set: BigDL's accuracy must equal Keras's
within ``TOLERANCE`` (0.5 point), else nothing is written.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from iotbench.convert import TOLERANCE, progress, run_module
from iotbench.files import sha256

ROOT = Path(__file__).resolve().parents[2]


def keras_layers(model) -> list[dict]:
    """The Keras model as a list of plain layer specs (kind, config, weights, input shape)."""
    specs = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            continue
        if kind not in ("Conv2D", "MaxPooling2D", "Dropout", "Flatten", "Dense"):
            raise ValueError(f"layer {layer.name} ({kind}) has no BigDL counterpart in this converter")
        specs.append({"kind": kind, "config": layer.get_config(), "weights": layer.get_weights(),
                      "input_shape": tuple(layer.input.shape[1:])})
    return specs


def bigdl_weights(specs: list[dict]) -> list[np.ndarray]:
    """Keras weights re-laid out for the NCHW BigDL twin, in BigDL's ``get_weights`` order (pure numpy)."""
    out: list[np.ndarray] = []
    flattened_from: tuple | None = None
    for spec in specs:
        kind, weights = spec["kind"], spec["weights"]
        if kind == "Flatten":
            flattened_from = spec["input_shape"]  # (h, w, c)
        elif kind == "Conv2D":
            kernel = weights[0]
            out.append(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)[None]))
            out += weights[1:]
        elif kind == "Dense":
            kernel = weights[0]
            if flattened_from is not None:
                h, w, c = flattened_from
                kernel = kernel.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1)
                flattened_from = None
            out.append(np.ascontiguousarray(kernel.T))
            out += weights[1:]
    return out


def build_bigdl(specs: list[dict]):
    """The BigDL Keras-API Sequential twin (needs a running BigDL context)."""
    from bigdl.dllib.keras import layers as L
    from bigdl.dllib.keras.models import Sequential

    model = Sequential()
    first = True
    for spec in specs:
        cfg, kind = spec["config"], spec["kind"]
        kwargs = {}
        if first:
            h, w, c = spec["input_shape"]
            kwargs["input_shape"] = (c, h, w)
            first = False
        if kind == "Conv2D":
            if tuple(cfg["strides"]) != (1, 1) or tuple(cfg.get("dilation_rate", (1, 1))) != (1, 1):
                raise ValueError("only stride-1, undilated Conv2D layers are converted")
            kh, kw = cfg["kernel_size"]
            layer = L.Convolution2D(cfg["filters"], kh, kw, activation=_activation(cfg),
                                    border_mode=cfg["padding"], bias=cfg["use_bias"], **kwargs)
        elif kind == "MaxPooling2D":
            layer = L.MaxPooling2D(tuple(cfg["pool_size"]), strides=tuple(cfg["strides"] or cfg["pool_size"]),
                                   border_mode=cfg["padding"], **kwargs)
        elif kind == "Dropout":
            layer = L.Dropout(cfg["rate"], **kwargs)
        elif kind == "Flatten":
            layer = L.Flatten(**kwargs)
        else:  # Dense
            layer = L.Dense(cfg["units"], activation=_activation(cfg), bias=cfg["use_bias"], **kwargs)
        model.add(layer)
    return model


def _activation(cfg: dict) -> str | None:
    act = cfg.get("activation", "linear")
    return None if act in (None, "linear") else act


def convert(keras_path: Path, out_stem: Path, sc, images: np.ndarray | None = None,
            labels: np.ndarray | None = None) -> dict:
    """Build, fill, check and save the BigDL twin; returns the sidecar dict (also written as JSON)."""
    import keras

    from iotbench.data import cifar10
    from iotbench.engines.spark_models import BigDLClassifier
    from iotbench.models import preprocess
    from iotbench.models.cards import model_transform

    kmodel = keras.models.load_model(keras_path, compile=False)
    transform = model_transform(keras_path)
    if images is None:
        test = cifar10.load("test")
        images, labels = test.images, test.labels
    labels = np.asarray(labels, np.int64)
    specs = keras_layers(kmodel)
    bmodel = build_bigdl(specs)
    bmodel.set_weights(bigdl_weights(specs))

    x = preprocess(images, transform)
    progress(f"Keras: predicting {len(labels):,} images")
    keras_pred = np.asarray(kmodel.predict(x, batch_size=256, verbose=0)).argmax(1)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    defs, weights = out_stem.with_suffix(".bigdl"), out_stem.with_suffix(".bin")
    bmodel.saveModel(str(defs), str(weights), over_write=True)
    for path in (defs, weights):  # Hadoop's local file system leaves checksum files; loading does not need them
        path.with_name(f".{path.name}.crc").unlink(missing_ok=True)

    # Check what was saved, through the same code path the benchmark uses.
    progress(f"BigDL: predicting {len(labels):,} images through the benchmark's code path")
    classifier = BigDLClassifier(defs, weights, transform=transform)
    classifier.load(sc)
    blocks = [(images[i:i + 500], labels[i:i + 500], True) for i in range(0, len(labels), 500)]
    bigdl_pred = classifier.predict_blocks(sc.parallelize(blocks, max(sc.defaultParallelism, 2)))
    keras_acc = float((keras_pred == labels).mean())
    bigdl_acc = float((bigdl_pred == labels).mean())
    agreement = float((keras_pred == bigdl_pred).mean())
    info = {
        "name": out_stem.name,
        "format": "BigDL 2.4 Keras-API (Net.load defs + weights), NCHW input",
        "definition": defs.name,
        "weights": weights.name,
        "source_keras": str(Path(keras_path).name),
        "source_sha256": sha256(keras_path),
        "input_transform": transform,
        "layout": "NCHW",
        "test_images": int(len(labels)),
        "keras_test_accuracy": keras_acc,
        "test_accuracy": bigdl_acc,
        "agreement_with_keras": agreement,
        "definition_sha256": sha256(defs),
        "weights_sha256": sha256(weights),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if abs(bigdl_acc - keras_acc) > TOLERANCE:
        defs.unlink(missing_ok=True)
        weights.unlink(missing_ok=True)
        raise ValueError(f"BigDL accuracy {bigdl_acc:.4f} differs from Keras {keras_acc:.4f} by more than "
                         f"{TOLERANCE * 100:.1f} point; nothing saved")
    out_stem.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def card(info: dict) -> str:
    """The ``models/MODELS.md`` section for a converted model."""
    return (
        f"## {info['name']} (BigDL)\n\n"
        f"- Files: `models/{info['definition']}` (definition) + `models/{info['weights']}` (weights), "
        f"loaded with `bigdl.dllib.net.Net.load(defs, weights)`; sidecar `models/{info['name']}.json`.\n"
        f"- What: the Keras CNN `models/{info['source_keras']}` (sha256 `{info['source_sha256'][:16]}…`) rebuilt "
        "layer for layer in BigDL 2.4's Keras API, channels-first (NCHW); weights transferred by "
        "`iotbench convert cnn` (conv kernels to (1,out,in,kh,kw), first Dense rows permuted "
        "from HWC to CHW flatten order). No training in BigDL.\n"
        f"- Input: 32x32x3 RGB, transform `{info['input_transform']}` (pixels / 255), transposed to NCHW.\n"
        f"- CIFAR-10 test accuracy ({info['test_images']:,} images): BigDL {100 * info['test_accuracy']:.2f}% vs "
        f"Keras {100 * info['keras_test_accuracy']:.2f}%; predictions agree on "
        f"{100 * info['agreement_with_keras']:.2f}% of images.\n"
        f"- sha256: definition `{info['definition_sha256']}`, weights `{info['weights_sha256']}`.\n"
    )


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--keras", type=Path, default=ROOT / "models" / "cnn.keras", help="trained Keras model")
    p.add_argument("--out", type=Path, default=ROOT / "models" / "bigdl_cnn",
                   help="output stem: STEM.bigdl (definition), STEM.bin (weights), STEM.json (sidecar)")
    p.add_argument("--master", default="local[2]", help="Spark master for the check")


def run(args: argparse.Namespace) -> int:
    if not args.keras.is_file():
        print(f"error: Keras model not found: {args.keras}", file=sys.stderr)
        return 2
    from iotbench.spark import context as spark_context

    sc = spark_context.start(spark_context.SparkSettings(master=args.master, app_name="bigdl_convert"))
    try:
        info = convert(args.keras, args.out, sc)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        spark_context.stop()
    print(card(info))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m iotbench.convert.bigdl_cnn`` (also ``iotbench convert``)."""
    return run_module(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
