"""Per-row training state, frozen at a refresh and read until the next one.

DEC's soft assignments at the last target refresh and AEC's assignment are functions
of each row and of the network as it was at the last refresh:
s_i = statistic(encoder*(x_i), centroids*). `FrozenRowState` holds that state for
arrays and streams alike, from the method's one `statistic`:

- arrays: the refresh evaluates the statistic on every row's code and stores it (a
  row-state variable, saved with the model, so a loaded model resumes); a step
  gathers its batch's rows by index;
- streams: there is no row index to store by, and N x K values may not fit in memory
  (44 MB per replica at a million rows and K = 10); the refresh keeps a frozen copy
  of the encoder and the centroids instead, and a step recomputes the statistic on
  its batch (one extra forward pass, in memory that does not grow with N).

A method's refresh reads the data through `chunks(x)`: the current codes beside the
frozen state, in one chunk for arrays (encoded once) and batch by batch for streams.
"""

import keras
import numpy as np
import tensorflow as tf

from keras_deepclust._validation import data_fingerprint


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

    def take(self, encoder):
        """Copies `encoder`'s current weights."""
        for mine, theirs in zip(self.network.weights, encoder.weights, strict=True):
            mine.assign(theirs)

    def __call__(self, x):
        return self.network(x, training=False)


class FrozenRowState:
    """The state of every row under the encoder and centroids of the last `take`.

    Args:
        model: the `AutoencoderClusteringModel` whose encoder is frozen.
        name: the name of the stored values (a row-state variable of `model`).
        statistic: `statistic(codes, centroids)`, the state of a batch of rows as a
            tensor; written once, it serves arrays and streams.
        centroids: `centroids()`, the model's centroid variable (built after the
            model's constructor, so asked for when needed).
        trailing_shape: the shape of one row's state.
        dtype: its dtype.
        initial: `initial(x)`, the state of a batch of (scaled) rows before the first
            `take`, set by `start`; a function of the rows, so a stream gets the same
            start as the array. None: no state before the first `take`.
    """

    def __init__(self, model, name, statistic, centroids, trailing_shape=(), dtype="float32",
                 initial=None):
        self.model = model
        self.statistic = statistic
        self.centroids = centroids
        self.initial = initial
        self.values = model._add_row_state(name, trailing_shape, dtype)
        self.fingerprint = model._add_row_state(f"{name}_fingerprint", dtype="float64")
        self._stream_mode = None  # "initial" or "snapshot" once a stream holds a state
        self._snapshot = None
        self._passes = {}

    # ------------------------------------------------------------------ state
    def holds(self, x, fingerprint=None):
        """Whether a state exists for this very `x` (arrays: stored for its rows; a
        stream: any state of a stream, which has no fingerprint to check)."""
        if isinstance(x, tf.data.Dataset):
            return self._stream_mode is not None
        if int(tf.shape(self.values)[0]) != len(x):
            return False
        fingerprint = data_fingerprint(x) if fingerprint is None else fingerprint
        return np.allclose(self.fingerprint.numpy(), fingerprint)

    def forget(self):
        """Drops the state (the codes it was computed from are gone)."""
        self._set_stream_mode(None)

    def _set_stream_mode(self, mode):
        """A stream's state replaces any stored one, and the reverse."""
        self.values.assign(tf.zeros((0, *self.values.shape[1:]), self.values.dtype))
        self._stream_mode = mode

    def start(self, x):
        """Sets the `initial` state of `x`'s rows."""
        if isinstance(x, tf.data.Dataset):
            self._set_stream_mode("initial")
        else:
            self.store(x, self.initial(tf.convert_to_tensor(np.asarray(x))))

    def take(self, x, chunks, fingerprint=None):
        """Freezes the state at the model's current encoder and centroids: stored from
        the codes of `chunks` (from `chunks(x)`) for arrays, a snapshot for a stream."""
        if isinstance(x, tf.data.Dataset):
            if self._snapshot is None:
                self._snapshot = _Snapshot(self.model, self.centroids())
            self._snapshot.take(self.model.encoder, self.centroids())
            self._set_stream_mode("snapshot")
            return
        (codes, _), = chunks
        self.store(x, self.statistic(tf.convert_to_tensor(codes), self.centroids()), fingerprint)

    def store(self, x, values, fingerprint=None):
        """Stores `values` as the state of the array `x`'s rows."""
        self._stream_mode = None
        self.values.assign(values)
        self.fingerprint.assign(data_fingerprint(x) if fingerprint is None else fingerprint)

    # ---------------------------------------------------------------- reading
    def __call__(self, x, index=None):
        """The frozen state of a batch: gathered by the rows' `index` into the stored
        values (arrays), else recomputed from the batch `x` (a stream)."""
        if index is not None:
            return tf.gather(self.values, index)
        if self._stream_mode == "snapshot":
            return self.statistic(self._snapshot.encoder(x), self._snapshot.centroids)
        if self._stream_mode == "initial":
            return self.initial(x)
        raise RuntimeError("The row state of this stream was never taken; initialise first.")

    def chunks(self, x, batch_size=256, fingerprint=None):
        """`(codes, state)` pairs covering `x`: the codes under the current encoder, and
        the frozen state of the same rows (None if there is none; `fingerprint`:
        `data_fingerprint(x)`, when the caller has it already).

        Arrays come as one chunk, encoded once; a stream as one chunk per batch, an
        iterable that reads the stream again each time it is iterated.
        """
        if isinstance(x, tf.data.Dataset):
            return _StreamChunks(self, x)
        codes = tf.convert_to_tensor(self.model.finite_codes(x, batch_size=batch_size))
        state = self.values if self.holds(x, fingerprint) else None
        return [(codes, state)]

    def _batch_pass(self):
        """The compiled codes-and-state pass of a stream batch, one per mode."""
        mode = self._stream_mode
        if mode not in self._passes:
            def codes_and_state(batch):
                codes = self.model.encoder(batch, training=False)
                return codes, (None if mode is None else self(batch))
            self._passes[mode] = tf.function(codes_and_state)
        return self._passes[mode]


class _StreamChunks:
    def __init__(self, state, dataset):
        self.state = state
        self.dataset = dataset

    def __iter__(self):
        batch_pass = self.state._batch_pass()
        for batch in self.dataset:
            yield batch_pass(batch)


class _Snapshot:
    """The frozen encoder and centroids of a stream's state."""

    def __init__(self, model, centroids):
        self.encoder = EncoderSnapshot(model.encoder, model.distribute_strategy)
        with model.distribute_strategy.scope():
            self.centroids = tf.Variable(tf.zeros_like(centroids), trainable=False)

    def take(self, encoder, centroids):
        self.encoder.take(encoder)
        self.centroids.assign(centroids)
