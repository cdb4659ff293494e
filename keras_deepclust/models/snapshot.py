"""Per-row clustering state for data streamed from disk, recomputed instead of stored.

DEC's target distribution P (N x K) and AEC's assignment (N) are functions of the
data and of the network *as it was* at the last refresh. With arrays the models
store them per row; a stream has no row index to store by and may be too large to
hold N x K (44 MB per replica at a million rows and K = 10). `EncoderSnapshot`
keeps a frozen copy of the encoder's weights from the refresh instead, so any
batch's state is recomputed exactly when the batch comes by, in memory that does
not grow with N: one extra forward pass per step.
"""

import keras


class EncoderSnapshot:
    """A frozen copy of an encoder, taken with `take()` and called like the encoder.

    A plain object on purpose: as an attribute of the model it is not one of the
    model's layers, so it is neither trained nor saved.

    Args:
        encoder: the functional encoder to copy (its architecture; `take` copies the
            weights).
        strategy: the `tf.distribute` strategy the copy's variables are created under.
    """

    def __init__(self, encoder, strategy):
        with strategy.scope():
            self.network = keras.models.clone_model(encoder)
        self.network.trainable = False
        self.ready = False

    def take(self, encoder):
        """Copies `encoder`'s current weights."""
        for mine, theirs in zip(self.network.weights, encoder.weights, strict=True):
            mine.assign(theirs)
        self.ready = True

    def __call__(self, x):
        return self.network(x, training=False)

