"""``iotbench train``: a short real training run writes a model whose card tells the truth about it."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.keras


def test_train_writes_a_model_and_a_card_that_match(tmp_path, cifar_test):
    pytest.importorskip("keras")
    out = tmp_path / "cnn.keras"
    proc = subprocess.run([sys.executable, "-m", "iotbench", "train", "cnn", "--epochs", "1", "--limit", "512",
                           "--out", str(out), "--verbose", "0"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert card["epochs"] == 1 and card["finished"] and card["test_images"] == len(cifar_test)
    assert card["correct"] / card["test_images"] == pytest.approx(card["test_accuracy"])

    import keras

    from iotbench.models import preprocess

    model = keras.models.load_model(out, compile=False)
    x = preprocess(cifar_test.images, card["input_transform"])
    predicted = np.asarray(model.predict(x, batch_size=500, verbose=0)).argmax(1)
    assert int(np.count_nonzero(predicted == cifar_test.labels)) == card["correct"]


def test_a_model_trained_in_mixed_bfloat16_is_delivered_and_scored_in_float32(tmp_path):
    """bf16 halves a training step on CPUs that have it, but every engine downstream (TensorFlow, ONNX,
    OpenVINO, the BigDL twin) must get the same float32 model an fp32 run would deliver."""
    pytest.importorskip("keras")
    out = tmp_path / "cnn.keras"
    proc = subprocess.run([sys.executable, "-m", "iotbench", "train", "cnn", "--epochs", "1", "--limit", "256",
                           "--precision", "mixed_bfloat16", "--out", str(out), "--verbose", "0"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["settings"]["precision"] == "mixed_bfloat16" and "mixed_bfloat16" in card["recipe"]

    import keras

    model = keras.models.load_model(out, compile=False)
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}


def test_train_help_lists_the_training_options():
    out = subprocess.run([sys.executable, "-m", "iotbench", "train", "--help"], capture_output=True, text=True,
                         check=True).stdout
    for option in ("cnn", "resnet20", "--epochs", "--resume", "--batch-size", "--lr", "--precision"):
        assert option in out


def test_resume_refuses_options_that_contradict_the_checkpoint_instead_of_ignoring_them():
    from iotbench.models.train import resume_conflicts

    settings = {"batch_size": 128, "lr": 0.05, "optimizer": "sgd", "weight_decay": 5e-4, "precision": "mixed_bfloat16"}
    assert resume_conflicts(settings, batch_size=None, lr=None, optimizer=None, weight_decay=None, precision=None) == []
    assert resume_conflicts(settings, lr=0.05, precision="mixed_bfloat16", batch_size=128) == []
    assert resume_conflicts(settings, lr=0.1, precision="fp32") == [
        "--lr 0.1 (the checkpoint's is 0.05)", "--precision fp32 (the checkpoint's is mixed_bfloat16)"]
    # a checkpoint from before --precision existed trained in fp32
    assert resume_conflicts({"lr": 0.1}, precision="mixed_bfloat16") == [
        "--precision mixed_bfloat16 (the checkpoint's is fp32)"]


def test_bf16_training_on_a_cpu_without_native_bf16_is_warned_about():
    from iotbench.models.train import bf16_warning

    assert bf16_warning("fp32", frozenset()) is None
    assert bf16_warning("mixed_bfloat16", frozenset({"avx2", "avx512_bf16"})) is None
    assert bf16_warning("mixed_bfloat16", frozenset({"amx_bf16"})) is None
    line = bf16_warning("mixed_bfloat16", frozenset({"avx2", "fma"}))
    assert line.startswith("warning: --precision mixed_bfloat16") and "avx512_bf16" in line and "\n" not in line


def test_batchnorm_statistics_recomputed_for_averaged_weights_are_the_exact_mean_over_the_batches():
    """SWA's mean weights need BatchNormalization statistics of their own; the recomputation must give the
    plain average over the batches it saw, not Keras' exponential moving average."""
    pytest.importorskip("keras")
    import keras

    from iotbench.models.train import recompute_batchnorm

    model = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization(momentum=0.99)])
    rng = np.random.default_rng(0)
    batches = [(rng.normal(loc, 1.0, (64, 3)).astype("float32"), None) for loc in (0.0, 4.0, 8.0)]
    assert recompute_batchnorm(model, batches) == 3
    bn = model.layers[0]
    everything = np.concatenate([x for x, _ in batches])
    np.testing.assert_allclose(bn.moving_mean.numpy(), everything.mean(0), rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), np.mean([x.var(0) for x, _ in batches], 0), rtol=1e-4)
    assert bn.momentum == 0.99  # restored for whoever trains the model next


def test_swa_warm_start_delivers_the_mean_of_its_epochs_and_says_so_in_the_card(tmp_path, cifar_test):
    pytest.importorskip("keras")
    out = tmp_path / "cnn.keras"
    common = [sys.executable, "-m", "iotbench", "train", "cnn", "--limit", "256", "--out", str(out), "--verbose", "0"]
    first = subprocess.run([*common, "--epochs", "1"], capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    swa = subprocess.run([*common, "--resume", "--epochs", "2", "--swa-epochs", "2", "--swa-lr", "1e-4",
                          "--keep-checkpoint"], capture_output=True, text=True, timeout=600)
    assert swa.returncode == 0, swa.stderr[-2000:]
    assert "swa: delivering the mean of 2 epochs" in swa.stdout
    # a pure SWA run has one constant lr, so it may be lengthened on --resume: one more epoch, a mean of three
    longer = subprocess.run([*common, "--resume", "--epochs", "3"], capture_output=True, text=True, timeout=600)
    assert longer.returncode == 0, longer.stderr[-2000:]
    assert "swa: delivering the mean of 3 epochs" in longer.stdout
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["swa_epochs_averaged"] == 3 and card["settings"]["swa_epochs"] == 3 and card["epochs"] == 3
    assert card["swa_score_every"] == 5  # the default: how often the mean was scored on the test set
    assert "stochastic weight averaging" in card["recipe"] and card["previous_runs"][0]["epochs"] == 1
    assert not (tmp_path / "cnn.swa.npz").exists()  # a finished run keeps no checkpoint files
    assert "swa: removed the running mean with the checkpoint" in longer.stdout  # and says what that means

    import keras

    from iotbench.models import preprocess

    model = keras.models.load_model(out, compile=False)
    predicted = np.asarray(model.predict(preprocess(cifar_test.images, card["input_transform"]), batch_size=500,
                                         verbose=0)).argmax(1)
    assert int(np.count_nonzero(predicted == cifar_test.labels)) == card["correct"]


def test_swa_options_that_cannot_work_are_refused_in_one_line(tmp_path):
    from iotbench.models.train import train

    with pytest.raises(ValueError, match="--swa-lr"):
        train("cnn", epochs=2, swa_epochs=1, out=tmp_path / "a.keras")
    with pytest.raises(ValueError, match="between 0 and --epochs"):
        train("cnn", epochs=2, swa_epochs=3, swa_lr=0.01, out=tmp_path / "a.keras")
    with pytest.raises(ValueError, match="finished model"):
        train("cnn", epochs=2, swa_epochs=2, swa_lr=0.01, out=tmp_path / "a.keras")
    with pytest.raises(ValueError, match="--swa-score-every must be 0"):
        train("cnn", epochs=2, swa_epochs=1, swa_lr=0.01, swa_score_every=-1, out=tmp_path / "a.keras")
