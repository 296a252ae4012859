"""The reference Keras U-Net, written as the reference code builds it, for parity tests."""

from __future__ import annotations

import os


def build_reference_keras_unet(height: int = 96, width: int = 96, channels: int = 1):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    from keras import Input, Model
    from keras.layers import Conv2D, Conv2DTranspose, MaxPooling2D, concatenate

    inputs = Input((height, width, channels))
    skips = []
    x = inputs
    for filters in (32, 64, 128, 256):
        x = Conv2D(filters, (3, 3), activation="relu", padding="same")(x)
        x = Conv2D(filters, (3, 3), activation="relu", padding="same")(x)
        skips.append(x)
        x = MaxPooling2D(pool_size=(2, 2))(x)
    x = Conv2D(512, (3, 3), activation="relu", padding="same")(x)
    x = Conv2D(512, (3, 3), activation="relu", padding="same")(x)
    for filters, skip in zip((256, 128, 64, 32), reversed(skips)):
        x = concatenate([Conv2DTranspose(filters, (2, 2), strides=(2, 2), padding="same")(x), skip], axis=3)
        x = Conv2D(filters, (3, 3), activation="relu", padding="same")(x)
        x = Conv2D(filters, (3, 3), activation="relu", padding="same")(x)
    outputs = Conv2D(1, (1, 1), activation="sigmoid")(x)
    return Model(inputs=[inputs], outputs=[outputs])
