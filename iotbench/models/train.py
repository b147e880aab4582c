"""Train a registered model on CIFAR-10 and deliver it as a native ``.keras`` file plus a JSON sidecar.

    python -m iotbench.models.train cnn --epochs 24 --out models/cnn.keras
    python -m iotbench.models.train cnn --epochs 24 --out models/cnn.keras --resume
    python -m iotbench.models.train cnn --out models/cnn.keras --finalize   # deliver the last checkpoint as is

Recipe: tf.data (cache, shuffle, random horizontal flip and 4-pixel zero-pad + random 32x32
crop, batch, prefetch), label smoothing 0.1, a one-cycle learning rate (linear warm-up to the
peak, then cosine annealing to ~0) computed per step from the total epoch count.  The test set
is the validation set, so the per-epoch log shows test accuracy.

Stochastic weight averaging (``--swa-epochs K --swa-lr LR``): the one-cycle schedule runs over the
first epochs - K epochs, the last K run at the constant LR, and the delivered model is the equal-weight
mean of the weights at the end of each of those K epochs, with BatchNormalization statistics
recomputed for the mean (Izmailov et al., 2018).  With K = epochs on a warm start the whole run is SWA
from the finished model's weights.

Files for ``--out models/NAME.keras``: ``models/NAME.ckpt.keras`` (full model with optimizer,
written after every epoch), ``models/NAME.state.json`` (epochs done, settings, history),
``models/NAME.swa.npz`` (the running mean of an SWA run) and,
at the end, ``models/NAME.keras`` (inference model, no optimizer) and ``models/NAME.json``.
The checkpoint and state are removed once training finishes (``--keep-checkpoint`` keeps them).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from iotbench.files import sha256
from iotbench.models import get, preprocess

DEFAULTS = {
    # optimizer, peak lr, decoupled weight decay (the ResNet already has L2 1e-4 in its layers)
    "cnn": {"optimizer": "adamw", "lr": 2e-3, "weight_decay": 5e-2},
    "resnet20": {"optimizer": "sgd", "lr": 0.1, "weight_decay": 0.0},
}
LABEL_SMOOTHING = 0.1
# Keras dtype policies a run may train under.  mixed_bfloat16 computes in bf16 with float32 weights:
# on CPUs with AVX512_BF16 or AMX it halves the step time (Zen 4, 2 cores: 517 -> 251 ms per
# ResNet20 step of 128); the delivered model is always rebuilt in float32 and scored that way.
PRECISIONS = {"fp32": "float32", "mixed_bfloat16": "mixed_bfloat16"}
WARMUP_FRACTION = 0.15
NUM_CLASSES = 10


def paths(out: Path) -> dict[str, Path]:
    out = Path(out)
    if out.suffix != ".keras":
        raise ValueError(f"--out must end in .keras, not {out}")
    stem = out.with_suffix("")
    return {
        "out": out,
        "ckpt": stem.with_name(stem.name + ".ckpt.keras"),
        "state": stem.with_name(stem.name + ".state.json"),
        "sidecar": stem.with_suffix(".json"),
        "swa": stem.with_name(stem.name + ".swa.npz"),
    }


def _keras():
    import keras

    @keras.saving.register_keras_serializable(package="iotbench")
    class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
        """Linear warm-up from peak/div to peak over ``warmup_steps``, then cosine down to peak/final_div."""

        def __init__(self, peak, total_steps, warmup_steps, div=25.0, final_div=1e4, hold_lr=None):
            self.peak = float(peak)
            self.total_steps = int(total_steps)
            self.warmup_steps = int(warmup_steps)
            self.div = float(div)
            self.final_div = float(final_div)
            # SWA: from total_steps on, the lr stays at hold_lr (None: the cosine's end, as before SWA existed)
            self.hold_lr = None if hold_lr is None else float(hold_lr)

        def __call__(self, step):
            from keras import ops

            step = ops.cast(step, "float32")
            start, end = self.peak / self.div, self.peak / self.final_div
            warm = max(self.warmup_steps, 1)
            up = start + (self.peak - start) * ops.minimum(step / warm, 1.0)
            t = ops.clip((step - warm) / max(self.total_steps - warm, 1), 0.0, 1.0)
            down = end + (self.peak - end) * 0.5 * (1.0 + ops.cos(math.pi * t))
            lr = ops.where(step < warm, up, down)
            if self.hold_lr is not None:
                lr = ops.where(step >= self.total_steps, self.hold_lr, lr)
            return lr

        def get_config(self):
            return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps,
                    "div": self.div, "final_div": self.final_div, "hold_lr": self.hold_lr}

    return keras, OneCycle


def make_datasets(transform: str, batch_size: int, seed: int, limit: int | None, augment: bool = True):
    import tensorflow as tf

    from iotbench.data import cifar10

    train, test = cifar10.load("train"), cifar10.load("test")
    x_train, y_train = train.images, train.labels
    if limit:
        x_train, y_train = x_train[:limit], y_train[:limit]
    x_train = preprocess(x_train, transform)
    x_test = preprocess(test.images, transform)
    y_train_1h = np.eye(NUM_CLASSES, dtype=np.float32)[y_train]
    y_test_1h = np.eye(NUM_CLASSES, dtype=np.float32)[test.labels]

    def aug(pair, xy):
        x, y = xy
        s1, s2 = pair[0], pair[1]
        x = tf.image.stateless_random_flip_left_right(x, seed=s1)
        x = tf.pad(x, [[4, 4], [4, 4], [0, 0]])
        x = tf.image.stateless_random_crop(x, size=[32, 32, 3], seed=s2)
        return x, y

    ds = tf.data.Dataset.from_tensor_slices((x_train, y_train_1h)).cache()
    ds = ds.shuffle(len(x_train), seed=seed, reshuffle_each_iteration=True)
    if augment:
        rng = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(4).map(
            lambda v: tf.reshape(v, [2, 2]))
        ds = tf.data.Dataset.zip((rng, ds)).map(aug, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    val = tf.data.Dataset.from_tensor_slices((x_test, y_test_1h)).batch(500).cache().prefetch(tf.data.AUTOTUNE)
    return ds, val, len(x_train), (x_test, test.labels)


def make_optimizer(keras, OneCycle, kind, lr, weight_decay, total_steps, hold_lr=None):
    """The optimizer of a run: one cycle over ``total_steps`` (0 for a pure SWA run), then ``hold_lr``."""
    schedule = OneCycle(lr, total_steps, int(round(WARMUP_FRACTION * total_steps)), hold_lr=hold_lr)
    if kind == "sgd":
        return keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True,
                                    weight_decay=weight_decay or None)
    if kind == "adamw":
        return keras.optimizers.AdamW(schedule, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {kind!r}")


#: Score the SWA running mean every this many averaged epochs (a test-set score: see the card's history).
SWA_SCORE_EVERY = 5


def recipe_text(s: dict) -> str:
    swa_only = (s.get("swa_epochs") or 0) >= s["epochs"]
    opt = ("SGD momentum 0.9 nesterov" if s["optimizer"] == "sgd" else "AdamW") + (
        "" if swa_only else f", peak lr {s['lr']:g}")
    if s["weight_decay"]:
        opt += f", decoupled weight decay {s['weight_decay']:g}"
    cycle = "" if swa_only else (
        f"; one-cycle lr per step over {s['epochs'] - (s.get('swa_epochs') or 0)} epochs (linear warm-up from "
        f"peak/25 for {WARMUP_FRACTION:.0%} of steps, cosine to peak/1e4)")
    return (f"{opt}{cycle}; categorical cross-entropy, label smoothing "
            f"{LABEL_SMOOTHING}; batch {s['batch_size']}; augmentation: "
            + ("random horizontal flip + 4-px zero pad and random 32x32 crop" if s["augment"] else "none")
            + f"; input transform {s['input_transform']}; seed {s['seed']}; "
            f"training images {s['train_images']}; tf.data cache/shuffle/map/batch/prefetch"
            + ("; mixed_bfloat16 compute (float32 weights, float32 softmax), delivered and scored in float32"
               if s.get("precision") == "mixed_bfloat16" else "")
            + swa_text(s))


def swa_text(s: dict) -> str:
    k = s.get("swa_epochs") or 0
    if not k:
        return ""
    cycle = f"the one cycle over the first {s['epochs'] - k} epochs, then " if k < s["epochs"] else ""
    return (f"; stochastic weight averaging: {cycle}{k} epochs at constant lr {s['swa_lr']:g}, the delivered "
            f"weights the mean of the {k} end-of-epoch weights, BatchNormalization statistics recomputed for "
            f"the mean over one pass of the augmented training set")


def batchnorm_layers(model) -> list:
    """Every BatchNormalization layer of ``model``, nested models included."""
    import keras

    found, todo = [], [model]
    while todo:
        layer = todo.pop()
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        todo.extend(getattr(layer, "layers", []))
    return found


def recompute_batchnorm(model, batches) -> int:
    """Set every BatchNormalization layer's moving mean and variance to their average over ``batches``.

    Averaged weights need statistics of their own: the moving averages gathered while training belong
    to the individual snapshots, not to their mean.  With momentum 0 one compiled training-mode forward
    pass leaves each batch's own statistics in the layers; their mean (weighted by batch size) is exact,
    unlike Keras' exponential moving average.  Returns the number of batches used.
    """
    import tensorflow as tf

    layers = batchnorm_layers(model)
    saved = [layer.momentum for layer in layers]
    sums = [[np.zeros(layer.moving_mean.shape, np.float64), np.zeros(layer.moving_variance.shape, np.float64)]
            for layer in layers]
    seen, used = 0, 0
    try:
        for layer in layers:
            layer.momentum = 0.0
        forward = tf.function(lambda x: model(x, training=True), reduce_retracing=True)
        for x, *_rest in batches:
            forward(x)
            used += 1
            n = int(x.shape[0])
            for (mean_sum, var_sum), layer in zip(sums, layers):
                mean_sum += n * layer.moving_mean.numpy()
                var_sum += n * layer.moving_variance.numpy()
            seen += n
    finally:
        for layer, m in zip(layers, saved):
            layer.momentum = m
    if seen:
        for (mean_sum, var_sum), layer in zip(sums, layers):
            layer.moving_mean.assign((mean_sum / seen).astype(layer.moving_mean.dtype))
            layer.moving_variance.assign((var_sum / seen).astype(layer.moving_variance.dtype))
    return used


class WeightAverage:
    """The running equal-weight mean of a model's weights, kept in a file so that ``--resume`` continues it."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.mean: list[np.ndarray] | None = None
        self.count = 0
        if self.path.is_file():
            with np.load(self.path) as z:
                self.count = int(z["count"])
                self.mean = [z[f"w{i}"] for i in range(len(z.files) - 1)]

    def add(self, weights: list[np.ndarray]) -> None:
        self.count += 1
        if self.mean is None:
            self.mean = [np.array(w, dtype=np.float64) for w in weights]
        else:
            for m, w in zip(self.mean, weights):
                m += (np.asarray(w, dtype=np.float64) - m) / self.count
        tmp = self.path.with_name(self.path.name + ".tmp.npz")
        np.savez(tmp, count=self.count, **{f"w{i}": m for i, m in enumerate(self.mean)})
        os.replace(tmp, self.path)

    def weights(self, like: list[np.ndarray]) -> list[np.ndarray]:
        return [m.astype(np.asarray(w).dtype) for m, w in zip(self.mean, like)]


def previous_runs(sidecar: Path) -> list[dict]:
    """The cards of the runs a warm start continues, oldest first.

    A warm-started model's card must still show what the earlier file scored (and how it was trained),
    so the new card carries the old card (without its own nested history of runs) in ``previous_runs``.
    """
    if not sidecar.is_file():
        return []
    old = json.loads(sidecar.read_text())
    earlier = old.pop("previous_runs", [])
    return [*earlier, old]


def _read_state(p: Path) -> dict:
    return json.loads(p.read_text())


def _write_json(p: Path, obj: dict) -> None:
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, p)


def resume_conflicts(settings: dict, **given) -> list[str]:
    """The options given with ``--resume`` (None: not given) that contradict the checkpoint's settings.

    A checkpoint's schedule, optimizer state and dtype policy were built from its settings; resuming would
    silently keep them whatever was asked, so a different value is refused rather than ignored.
    """
    flags = {"batch_size": "--batch-size", "lr": "--lr", "optimizer": "--optimizer",
             "weight_decay": "--weight-decay", "precision": "--precision", "swa_epochs": "--swa-epochs",
             "swa_lr": "--swa-lr"}
    # what checkpoints from before an option trained with
    defaults = {"precision": "fp32", "weight_decay": 0.0, "swa_epochs": 0}
    return [f"{flags[k]} {v} (the checkpoint's is {settings.get(k, defaults.get(k))})"
            for k, v in given.items() if v is not None and v != settings.get(k, defaults.get(k))]


def bf16_warning(precision: str, flags: frozenset[str] | None = None) -> str | None:
    """One line when ``mixed_bfloat16`` is asked for on a CPU that has no native bf16 (TensorFlow emulates it)."""
    from iotbench.cpu import BF16_FLAGS, cpu_flags, supports_bf16

    if precision != "mixed_bfloat16" or supports_bf16(cpu_flags() if flags is None else flags):
        return None
    return (f"warning: --precision mixed_bfloat16 on a CPU without native bf16 (none of {', '.join(BF16_FLAGS)} in "
            "/proc/cpuinfo): it is emulated there and slower than fp32; the model is the same either way")


def train(name: str, epochs: int | None = None, batch_size: int | None = None, out: Path | None = None, seed: int = 0,
          resume: bool = False, lr: float | None = None, optimizer: str | None = None,
          weight_decay: float | None = None, limit: int | None = None, augment: bool = True,
          keep_checkpoint: bool = False, finalize_only: bool = False, verbose: int = 2,
          precision: str | None = None, swa_epochs: int | None = None, swa_lr: float | None = None,
          swa_score_every: int = SWA_SCORE_EVERY) -> dict:
    """Train ``name`` and deliver it with its card; ``swa_score_every`` scores the running mean every that many
    averaged epochs (a progress line only, about a minute and a half of ResNet20 on two cores; 0: never)."""
    if swa_score_every < 0:
        raise ValueError(f"--swa-score-every must be 0 (never) or a positive number of epochs, not {swa_score_every}")
    spec = get(name)
    p = paths(out or Path("models") / f"{name}.keras")
    p["out"].parent.mkdir(parents=True, exist_ok=True)
    keras, OneCycle = _keras()

    warm_start = None
    if resume and not p["ckpt"].is_file() and p["out"].is_file():
        # A finished run keeps no checkpoint: continue from the delivered model with a fresh
        # schedule of --epochs more epochs (weights kept, optimizer state and schedule restarted).
        if epochs is None:
            raise ValueError(f"{p['out']} is a finished model: pass --epochs N to continue it for N more epochs")
        warm_start, resume = p["out"], False
    if resume or finalize_only:
        if not (p["ckpt"].is_file() and p["state"].is_file()):
            raise FileNotFoundError(f"nothing to resume: {p['ckpt']} / {p['state']} missing")
        state = _read_state(p["state"])
        s = state["settings"]
        if s["name"] != name:
            raise ValueError(f"checkpoint is for {s['name']!r}, not {name!r}")
        if epochs is not None and epochs != s["epochs"] and s.get("swa_epochs") == s["epochs"]:
            # a pure SWA run holds one constant lr, so its length is not part of its schedule: it may change
            if epochs < state["epochs_done"]:
                raise ValueError(f"the SWA run has averaged {state['epochs_done']} epochs already; "
                                 f"--epochs must be at least that")
            print(f"SWA run: {s['epochs']} -> {epochs} epochs (a constant lr, so only the number averaged changes)",
                  flush=True)
            state.setdefault("length_changes", []).append(
                {"after_epochs": state["epochs_done"], "from": s["epochs"], "to": int(epochs)})
            s["epochs"] = s["swa_epochs"] = int(epochs)
        if epochs is not None and epochs != s["epochs"]:
            raise ValueError(f"checkpoint's schedule is for {s['epochs']} epochs; drop --epochs or pass {s['epochs']}")
        conflicts = resume_conflicts(s, batch_size=batch_size, lr=lr, optimizer=optimizer, weight_decay=weight_decay,
                                     precision=precision, swa_epochs=swa_epochs, swa_lr=swa_lr)
        if conflicts:
            raise ValueError(f"--resume continues the checkpoint's own run; drop {'; '.join(conflicts)}")
        seed = s["seed"]
    else:
        if epochs is None:
            raise ValueError("--epochs is required for a new run")
        d = DEFAULTS[name]
        s = {"name": name, "epochs": int(epochs), "batch_size": int(batch_size or 128), "seed": int(seed),
             "optimizer": optimizer or d["optimizer"], "lr": float(lr if lr is not None else d["lr"]),
             "weight_decay": float(weight_decay if weight_decay is not None else d["weight_decay"]),
             "limit": limit, "augment": bool(augment), "input_transform": spec.input_transform,
             "precision": precision or "fp32", "swa_epochs": int(swa_epochs or 0), "swa_lr": swa_lr}
        if not 0 <= s["swa_epochs"] <= s["epochs"]:
            raise ValueError(f"--swa-epochs {s['swa_epochs']} must lie between 0 and --epochs {s['epochs']}")
        if s["swa_epochs"] and not s["swa_lr"]:
            raise ValueError("--swa-epochs needs --swa-lr (the constant learning rate of the averaged epochs)")
        if s["swa_epochs"] == s["epochs"] and warm_start is None:
            raise ValueError("an SWA-only run (--swa-epochs = --epochs) averages a trained model: use it with --resume "
                             "on a finished model")
        p["swa"].unlink(missing_ok=True)  # a new run starts a new mean
        state = {"settings": s, "epochs_done": 0, "wall_time_s": 0.0, "history": []}
        if warm_start is not None:
            state["previous_runs"] = previous_runs(paths(warm_start)["sidecar"])

    s.setdefault("precision", "fp32")  # runs before the option trained in fp32
    if s["precision"] not in PRECISIONS:
        raise ValueError(f"unknown precision {s['precision']!r}; choose from {', '.join(PRECISIONS)}")
    warning = bf16_warning(s["precision"])
    if warning:
        print(warning, file=sys.stderr, flush=True)
    keras.mixed_precision.set_global_policy(PRECISIONS[s["precision"]])
    keras.utils.set_random_seed(s["seed"] + state["epochs_done"])
    train_ds, val_ds, n_train, (x_test, y_test) = make_datasets(
        s["input_transform"], s["batch_size"], s["seed"] + state["epochs_done"], s["limit"], s["augment"])
    s["train_images"] = n_train
    steps_per_epoch = math.ceil(n_train / s["batch_size"])

    if resume or finalize_only:
        model = keras.models.load_model(p["ckpt"])
        print(f"resumed {p['ckpt']} after {state['epochs_done']}/{s['epochs']} epochs "
              f"(optimizer step {int(model.optimizer.iterations.numpy())})", flush=True)
    else:
        model = spec.build()
        if warm_start is not None:
            model.set_weights(keras.models.load_model(warm_start, compile=False).get_weights())
            print(f"continuing from the weights of {warm_start} with a new {s['epochs']}-epoch schedule", flush=True)
        opt = make_optimizer(keras, OneCycle, s["optimizer"], s["lr"], s["weight_decay"],
                             steps_per_epoch * (s["epochs"] - s.get("swa_epochs", 0)),
                             hold_lr=s["swa_lr"] if s.get("swa_epochs") else None)
        model.compile(optimizer=opt,
                      loss=keras.losses.CategoricalCrossentropy(label_smoothing=LABEL_SMOOTHING),
                      metrics=[keras.metrics.CategoricalAccuracy(name="acc")])
        if verbose:
            model.summary(print_fn=lambda line, **kw: print(line, flush=True))
    print(f"{name}: {model.count_params():,} params, {n_train} training images, {steps_per_epoch} steps/epoch, "
          f"{s['epochs']} epochs; recipe: {recipe_text(s)}", flush=True)

    swa_k = s.get("swa_epochs") or 0
    average = WeightAverage(p["swa"]) if swa_k else None
    if average is not None and average.count:
        print(f"swa: continuing the mean of {average.count} epochs in {p['swa']}", flush=True)

    def swa_score(weights) -> float:
        """Test accuracy of ``weights`` with BatchNormalization statistics of their own (progress log only)."""
        probe = spec.build()
        probe.set_weights(weights)
        recompute_batchnorm(probe, train_ds)
        return float(np.mean(np.argmax(probe.predict(x_test, batch_size=500, verbose=0), axis=1) == y_test))

    class Checkpoint(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.time()

        def on_epoch_end(self, epoch, logs=None):
            tmp = p["ckpt"].with_name(p["ckpt"].name.replace(".ckpt.keras", ".ckpt-tmp.keras"))
            self.model.save(tmp)
            os.replace(tmp, p["ckpt"])
            state["epochs_done"] = epoch + 1
            state["wall_time_s"] += time.time() - self.t0
            lr_now = float(self.model.optimizer.learning_rate.numpy()) if hasattr(
                self.model.optimizer.learning_rate, "numpy") else None
            entry = {"epoch": epoch + 1, **{k: round(float(v), 5) for k, v in (logs or {}).items()},
                     "lr": lr_now, "epoch_s": round(time.time() - self.t0, 1)}
            swa_note = ""
            if average is not None and epoch + 1 > s["epochs"] - swa_k:
                average.add(self.model.get_weights())
                if swa_score_every and average.count % swa_score_every == 0 and epoch + 1 < s["epochs"]:
                    entry["swa_val_acc"] = round(swa_score(average.weights(self.model.get_weights())), 5)
                    swa_note = f", mean of {average.count} epochs {entry['swa_val_acc']:.4f}"
                else:
                    swa_note = f", mean of {average.count} epochs"
            state["history"].append(entry)
            _write_json(p["state"], state)
            print(f"epoch {epoch + 1}/{s['epochs']}: test acc {logs.get('val_acc', float('nan')):.4f}{swa_note}  "
                  f"({time.time() - self.t0:.0f} s, total {state['wall_time_s'] / 60:.1f} min)", flush=True)

    if not finalize_only and state["epochs_done"] < s["epochs"]:
        model.fit(train_ds, epochs=s["epochs"], initial_epoch=state["epochs_done"], validation_data=val_ds,
                  callbacks=[Checkpoint()], verbose=verbose)
    if average is not None and average.count:
        # the delivered model is the mean, with statistics of its own, not the last epoch's weights
        model.set_weights(average.weights(model.get_weights()))
        used = recompute_batchnorm(model, train_ds)
        print(f"swa: delivering the mean of {average.count} epochs (BatchNormalization statistics from {used} "
              "training batches)", flush=True)
    return finalize(name, model, s, state, p, (x_test, y_test), keep_checkpoint=keep_checkpoint or finalize_only,
                    swa_score_every=swa_score_every)


def finalize(name, model, s, state, p, test, keep_checkpoint=False,
             swa_score_every: int = SWA_SCORE_EVERY) -> dict:
    import keras
    import tensorflow as tf

    spec = get(name)
    keras.mixed_precision.set_global_policy("float32")  # the delivered model is float32 whatever it trained in
    final = spec.build()
    final.set_weights(model.get_weights())
    tmp = p["out"].with_name(p["out"].stem + ".tmp.keras")
    final.save(tmp)
    os.replace(tmp, p["out"])
    # evaluate the delivered file, not the in-memory model
    reloaded = keras.models.load_model(p["out"])
    x_test, y_test = test
    probs = reloaded.predict(x_test, batch_size=500, verbose=0)
    correct = int((np.argmax(probs, axis=1) == y_test.astype(np.int64)).sum())
    finished = state["epochs_done"] >= s["epochs"]
    info = {
        "name": name,
        "architecture": {"cnn": "Keras cifar10_cnn example (4 conv + 2 dense, dropout)",
                         "resnet20": "ResNet20 v1 (Keras cifar10_resnet.py, depth 20, n=3)"}[name],
        "keras_model_name": final.name,
        "params": int(final.count_params()),
        "input_transform": spec.input_transform,
        "epochs": state["epochs_done"],
        "epochs_planned": s["epochs"],
        "finished": finished,
        "batch_size": s["batch_size"],
        "recipe": recipe_text(s),
        "settings": s,
        "wall_time_s": round(state["wall_time_s"], 1),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine(), "python": platform.python_version()},
        "test_images": int(len(y_test)),
        "test_accuracy": correct / len(y_test),
        "correct": correct,
        "file": p["out"].name,
        "sha256": sha256(p["out"]),
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        "numpy_version": np.__version__,
        "history": [{"epoch": h["epoch"], "val_acc": h.get("val_acc"), "acc": h.get("acc"), "epoch_s": h.get("epoch_s"),
                     **({"swa_val_acc": h["swa_val_acc"]} if "swa_val_acc" in h else {})}
                    for h in state["history"]],
    }
    if state.get("previous_runs"):
        info["previous_runs"] = state["previous_runs"]
        info["epochs_total"] = state["epochs_done"] + sum(r.get("epochs", 0) for r in state["previous_runs"])
    if state.get("length_changes"):
        info["length_changes"] = state["length_changes"]
    if s.get("swa_epochs"):
        info["swa_epochs_averaged"] = WeightAverage(p["swa"]).count
        # The progress scores (history's swa_val_acc) are test-set scores: a reader of the card must know how
        # often the running mean was looked at, since a stopping point chosen in view of them is test-set selection.
        info["swa_score_every"] = swa_score_every
    _write_json(p["sidecar"], info)
    if finished and not keep_checkpoint:
        for k in ("ckpt", "state", "swa"):
            p[k].unlink(missing_ok=True)
        if s.get("swa_epochs"):
            print(f"swa: removed the running mean with the checkpoint; a later --resume starts a new mean from "
                  f"{p['out'].name} (pass --keep-checkpoint to keep a mean that can be extended)", flush=True)
    print(f"{name}: {correct}/{len(y_test)} = {correct / len(y_test):.4f} test accuracy after "
          f"{state['epochs_done']}/{s['epochs']} epochs, {state['wall_time_s'] / 60:.1f} min; "
          f"wrote {p['out']} (sha256 {info['sha256']}) and {p['sidecar']}", flush=True)
    return info


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The training options (shared by ``python -m iotbench.models.train`` and ``iotbench train``)."""
    ap.add_argument("name", choices=["cnn", "resnet20"], help="architecture to train")
    ap.add_argument("--epochs", type=int,
                    help="total epochs (the lr schedule is computed from it; a pure SWA run, constant lr, may change "
                         "it on --resume)")
    ap.add_argument("--batch-size", type=int, help="training batch size (default 128)")
    ap.add_argument("--out", type=Path, help="output .keras file (default models/NAME.keras)")
    ap.add_argument("--seed", type=int, default=0, help="seed of weights, shuffling and augmentation")
    ap.add_argument("--resume", action="store_true",
                    help="continue from <out>.ckpt.keras / <out>.state.json; on a finished model, warm-start a new "
                         "schedule of --epochs more epochs from its weights")
    ap.add_argument("--finalize", action="store_true",
                    help="deliver the last checkpoint as the final model (no training), keeping the checkpoint")
    ap.add_argument("--lr", type=float, help="peak learning rate (default: cnn 2e-3 AdamW, resnet20 0.1 SGD)")
    ap.add_argument("--optimizer", choices=["sgd", "adamw"])
    ap.add_argument("--weight-decay", type=float)
    ap.add_argument("--limit", type=int, help="use only the first N training images (smoke tests)")
    ap.add_argument("--no-augment", action="store_true", help="no random crops and flips")
    ap.add_argument("--keep-checkpoint", action="store_true",
                    help="keep checkpoint + state (and an SWA run's running mean, so that it can be extended) after "
                         "finishing")
    ap.add_argument("--precision", choices=sorted(PRECISIONS),
                    help="compute dtype of training (default fp32): mixed_bfloat16 halves the step time on CPUs with "
                         "AVX512_BF16 or AMX (flags in /proc/cpuinfo; elsewhere it is emulated, slower, and "
                         "warned about); the delivered model is float32 either way")
    ap.add_argument("--swa-epochs", type=int,
                    help="stochastic weight averaging: the last K epochs run at --swa-lr and the delivered model is "
                         "the mean of their end-of-epoch weights, with BatchNormalization statistics recomputed "
                         "(K = --epochs with --resume on a finished model: SWA from its weights)")
    ap.add_argument("--swa-lr", type=float, help="constant learning rate of the SWA epochs (e.g. peak lr / 2.5)")
    ap.add_argument("--swa-score-every", type=int, default=SWA_SCORE_EVERY, metavar="N",
                    help="score the running mean on the test set every N averaged epochs, a progress line that "
                         "recomputes BatchNormalization statistics (default 5; 0: never)")
    ap.add_argument("--verbose", type=int, default=2, choices=[0, 1, 2], help="Keras fit verbosity")


def run(a: argparse.Namespace) -> int:
    train(a.name, epochs=a.epochs, batch_size=a.batch_size, out=a.out, seed=a.seed, resume=a.resume, lr=a.lr,
          optimizer=a.optimizer, weight_decay=a.weight_decay, limit=a.limit, augment=not a.no_augment,
          keep_checkpoint=a.keep_checkpoint, finalize_only=a.finalize, verbose=a.verbose,
          precision=a.precision, swa_epochs=a.swa_epochs, swa_lr=a.swa_lr, swa_score_every=a.swa_score_every)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m iotbench.models.train", description=__doc__.split("\n\n")[0])
    add_arguments(ap)
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
