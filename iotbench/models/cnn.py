"""The Keras ``cifar10_cnn`` example network, layer for layer."""

from __future__ import annotations

import keras
from keras import layers


def build_cnn(input_shape=(32, 32, 3), num_classes: int = 10) -> keras.Model:
    """Conv32-Conv32-Pool-Drop, Conv64-Conv64-Pool-Drop, Dense512-Drop, Dense10 softmax."""
    return keras.Sequential(
        [
            keras.Input(shape=input_shape, dtype="float32"),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(pool_size=2),
            layers.Dropout(0.25),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(pool_size=2),
            layers.Dropout(0.25),
            layers.Flatten(),
            layers.Dense(512, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(num_classes, activation="softmax", dtype="float32"),  # float32 under mixed precision too
        ],
        name="cifar10_cnn",
    )
