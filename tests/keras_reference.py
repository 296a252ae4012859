"""The reference Keras U-Net, written as the reference code builds it, for parity tests."""

from __future__ import annotations

import os


def build_reference_keras_unet(height: int = 96, width: int = 96, channels: int = 1, *, activation: str = "relu",
                               skip_first: bool = False, outputs: int = 1, head: str = "sigmoid",
                               use_bias: bool = True, filters_by_level: tuple[int, ...] = (32, 64, 128, 256, 512),
                               relu_layers: bool = False, extra_tanh: bool = False,
                               dilation: int = 1, pool: int = 2):
    """The reference (the defaults), or a variant that differs in one way the import must notice."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    from keras import Input, Model
    from keras import layers

    def conv(filters: int, x):  # a ReLU convolution, as the reference writes it or as a layer of its own
        if relu_layers:
            return layers.ReLU()(layers.Conv2D(filters, (3, 3), padding="same", use_bias=use_bias)(x))
        return layers.Conv2D(filters, (3, 3), activation=activation, padding="same", use_bias=use_bias,
                             dilation_rate=dilation)(x)

    Conv2DTranspose, MaxPooling2D, concatenate = layers.Conv2DTranspose, layers.MaxPooling2D, layers.concatenate

    inputs = Input((height, width, channels))
    skips = []
    x = inputs
    *down, bottom = filters_by_level
    for filters in down:
        x = conv(filters, x)
        x = layers.Activation("tanh")(x) if extra_tanh and not skips else x
        x = conv(filters, x)
        skips.append(x)
        x = MaxPooling2D(pool_size=(2, 2))(x) if pool == 2 else MaxPooling2D((pool, pool), strides=2, padding="same")(x)
    x = conv(bottom, conv(bottom, x))
    for filters, skip in zip(reversed(down), reversed(skips)):
        up = Conv2DTranspose(filters, (2, 2), strides=(2, 2), padding="same", use_bias=use_bias)(x)
        x = concatenate([skip, up] if skip_first else [up, skip], axis=3)
        x = conv(filters, conv(filters, x))
    result = layers.Conv2D(outputs, (1, 1), activation=head)(x)
    return Model(inputs=[inputs], outputs=[result])
