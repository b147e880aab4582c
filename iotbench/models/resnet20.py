"""ResNet20 v1, as in the Keras example ``cifar10_resnet.py`` (version 1, n=3, depth 20)."""

from __future__ import annotations

import keras
from keras import layers, regularizers


def _resnet_layer(x, num_filters=16, kernel_size=3, strides=1, activation="relu", batch_normalization=True):
    """Conv2D -> BN -> activation (``conv_first=True`` in the example)."""
    x = layers.Conv2D(
        num_filters,
        kernel_size=kernel_size,
        strides=strides,
        padding="same",
        kernel_initializer="he_normal",
        kernel_regularizer=regularizers.l2(1e-4),
    )(x)
    if batch_normalization:
        x = layers.BatchNormalization()(x)
    if activation is not None:
        x = layers.Activation(activation)(x)
    return x


def build_resnet20(input_shape=(32, 32, 3), num_classes: int = 10, depth: int = 20) -> keras.Model:
    if (depth - 2) % 6 != 0:
        raise ValueError("depth should be 6n+2 (20, 32, 44, ...)")
    num_filters = 16
    num_res_blocks = (depth - 2) // 6

    inputs = keras.Input(shape=input_shape, dtype="float32")
    x = _resnet_layer(inputs)
    for stack in range(3):
        for res_block in range(num_res_blocks):
            strides = 2 if stack > 0 and res_block == 0 else 1
            y = _resnet_layer(x, num_filters=num_filters, strides=strides)
            y = _resnet_layer(y, num_filters=num_filters, activation=None)
            if stack > 0 and res_block == 0:
                # projection shortcut to match the changed dimensions
                x = _resnet_layer(
                    x, num_filters=num_filters, kernel_size=1, strides=strides,
                    activation=None, batch_normalization=False,
                )
            x = layers.add([x, y])
            x = layers.Activation("relu")(x)
        num_filters *= 2

    x = layers.AveragePooling2D(pool_size=8)(x)
    y = layers.Flatten()(x)
    # float32 whatever the global policy: under mixed_bfloat16 training the softmax and the loss
    # stay in float32 (bf16 probabilities carry ~3 digits), and in fp32 this is the default anyway.
    outputs = layers.Dense(num_classes, activation="softmax", kernel_initializer="he_normal", dtype="float32")(y)
    return keras.Model(inputs=inputs, outputs=outputs, name=f"resnet{depth}_v1")
