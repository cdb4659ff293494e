"""float32 islands under a mixed-precision policy.

With `keras.mixed_precision.set_global_policy("mixed_bfloat16")` (or "mixed_float16") the
autoencoders compute in 16 bits, which is where the time goes. What follows the codes
stays float32: Student-t kernels, softmaxes, mixture log-densities, the input scaling and
every loss, whose normalisations and small differences a 16-bit mantissa (8 bits for
bfloat16) would round away. The networks end in a float32 cast
(`networks.float32_output`), so outputs and exported assigners are float32 under any policy.
"""

import contextlib

import keras

# The Keras dtype policies every method trains under (the CLI's --precision lists them too,
# literally, to answer --help without importing Keras).
POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")


class Float32Layer(keras.layers.Layer):
    """A layer that computes in float32 whatever the global dtype policy (its inputs are
    cast to float32 as they come in). A `dtype` argument still overrides it."""

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)



@contextlib.contextmanager
def dtype_policy(name):
    """Keras' global dtype policy `name` for the layers built inside, then the previous."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)
