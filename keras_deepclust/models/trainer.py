"""The training loop of every iterative method, whatever its networks: epochs over
arrays, a `tf.data` stream or the workers of a multi-worker strategy, resuming from a
`ClusteringBackup`, seeded shuffling and per-row state saved with the model.

A method supplies its objective (`train_step`) and the hooks `fit` calls
(`_initialize_for_fit`, `_fit_callbacks`, `_epoch_arrays`, ...); it needs no decoder.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from keras_deepclust.backup import single_backup
from keras_deepclust.distribute import is_multi_worker, multi_worker_fit
from keras_deepclust.models.base import ClusteringModel


class IterativeClusteringModel(ClusteringModel):
    """A `ClusteringModel` whose `fit` trains in epochs with `keras.Model.fit`.

    The training part of a method: a method composes it with its networks (e.g.
    `class DEC(AutoencoderClusteringModel, IterativeClusteringModel)`) and supplies its
    objective (`train_step`) and hooks.
    """

    ITERATIVE_FIT = True

    # Epochs of `fit(epochs=None)`: the method's paper (None: the method decides, see
    # `_default_epochs`).
    EPOCHS = None
    # What the "fit() does not use labels" error adds for this method.
    LABELS_HINT = ""
    # Whether an epoch over arrays leaves out its last, partial batch (for an objective
    # computed on the batch as a whole, which a handful of rows would make noise of).
    FULL_BATCHES = False

    def __init__(self, n_clusters=10, **kwargs):
        super().__init__(n_clusters=n_clusters, **kwargs)
        self._row_state = {}
        self._trackers = {}

    def _add_trackers(self, *names):
        """Epoch means of the losses `train_step` logs (`_track`), reported in this order."""
        self._trackers = {name: keras.metrics.Mean(name=name) for name in names}

    def _track(self, **values):
        """Adds each value (None: not logged) to its epoch mean; returns a step's logs."""
        for name, value in values.items():
            if value is not None:
                self._trackers[name].update_state(value)
        return {m.name: m.result() for m in self.metrics}

    @property
    def metrics(self):
        trackers = getattr(self, "_trackers", None)  # None while keras.Model.__init__ runs
        return list(trackers.values()) if trackers else super().metrics

    def fit(self, x=None, y=None, batch_size=256, epochs=None, verbose="auto", callbacks=None,
            validation_data=None, shuffle=True, initial_epoch=0, **kwargs):
        """The clustering phase. Same arguments as `keras.Model.fit`, with these
        differences:

        Args:
            x: the raw data to cluster, `(n_samples, ...)`, or a `tf.data.Dataset` of
                batches of it (then `batch_size` is the dataset's own and `shuffle` is
                up to it).
            y: must be None: clustering does not train on labels. To log ACC/NMI/ARI
                against known labels, pass `keras_deepclust.callbacks.ClusteringMetrics`.
            epochs: None takes the method's own schedule (`EPOCHS`; the DEC family
                trains until `tol` stops it).
            validation_data: `x_val` or `(x_val,)`; reports the same losses on it.
            callbacks: as in `keras.Model.fit`; with a
                `keras_deepclust.backup.ClusteringBackup` among them, the fit resumes
                from its last backup.

        Every step of the sequence is shared: the checks, resuming, the one-time
        initialisation (`_initialize_for_fit`), epochs over arrays, a stream or the
        workers of a multi-worker strategy, and the cluster sizes at the end
        (`history.cluster_sizes`, `history.empty_clusters`). A method supplies its
        objective (`train_step`) and its hooks.

        Returns:
            The `History`.
        """
        x, validation_data = self._check_fit_arguments(x, y, validation_data, kwargs, batch_size,
                                                       labels_hint=self.LABELS_HINT)
        initial_epoch, shuffle_seed = self._start_epochs(
            x, callbacks, lambda: self._fit_optimizer(x, batch_size), initial_epoch)
        self._check_ready_to_fit()
        self._initialize_for_fit(x, batch_size=batch_size, verbose=verbose, shuffle=shuffle)
        if epochs is None:
            epochs = self._default_epochs(x, batch_size, initial_epoch)
        callbacks = [*self._fit_callbacks(x, batch_size, callbacks or []), *(callbacks or [])]
        fit_arguments = dict(verbose=verbose, callbacks=callbacks,
                             validation_data=validation_data, **kwargs)
        if isinstance(x, tf.data.Dataset):
            history = self._fit_stream(x, epochs, initial_epoch, **fit_arguments)
        else:
            history = self._fit_epochs(self._epoch_arrays(x), batch_size, epochs, initial_epoch,
                                       shuffle_seed, shuffle, **fit_arguments)
        backup = single_backup(callbacks)
        if backup is not None:  # the History lists the epochs before a resume too
            history = backup.whole_history(history)
        self._after_fit(x, batch_size)
        return self._record_fit_labels(x, history, batch_size)

    def initialize(self, x, batch_size=256, verbose=0, shuffle=True):
        """Runs the method's one-time start on the raw `x` now, as the first `fit` would
        before its epochs (DEC's centroids, AEC's assignment, DAC's feature weights,
        DAMIC's cluster autoencoders, IMSAT's perturbation radii), so that the starting
        clusters can be looked at; a later `fit` on the same rows goes on from it.
        Returns self."""
        x = self.prepare_inputs(x, adapt=True)
        self._initialize_for_fit(x, batch_size=batch_size, verbose=verbose, shuffle=shuffle)
        return self

    def _check_ready_to_fit(self):
        """Warns when `fit` starts from a state its recipe does not expect (hook)."""

    def _fit_optimizer(self, x, batch_size):
        """The optimizer `fit` compiles with, unless the user compiled (hook)."""
        return keras.optimizers.Adam()

    def _initialize_for_fit(self, x, batch_size, verbose, shuffle):
        """The method's one-time initialisation on the (prepared) data, skipped when the
        model holds it already, e.g. restored from a backup (hook)."""

    def _default_epochs(self, x, batch_size, initial_epoch):
        return self.EPOCHS

    def _fit_callbacks(self, x, batch_size, user_callbacks):
        """The method's own callbacks, run before the user's (hook)."""
        return []

    def _epoch_arrays(self, x):
        """The arrays whose rows make each batch (hook: DEC adds a row index)."""
        return (x,)

    def _after_fit(self, x, batch_size):
        """What the method does once the epochs are over (hook)."""

    def _compile_once(self, make_optimizer):
        """Compiles with `make_optimizer()` unless the user compiled, under the strategy."""
        with self.distribute_strategy.scope():
            if not self.compiled:
                self.compile(optimizer=make_optimizer(), jit_compile=jit_default(None))
            if not self.optimizer.built:
                # Over *all* trainable variables, even those a method leaves untouched
                # (the decoder of DEC), so a saved optimizer state loads back in order.
                self.optimizer.build(self.trainable_variables)

    def _start_epochs(self, x, callbacks, make_optimizer, initial_epoch):
        """Compiles once and, with a `ClusteringBackup` among `callbacks`, restores its
        last backup (before any whole-data initialisation, which the restored state
        then skips).

        Returns:
            `(initial_epoch, shuffle_seed)` for `_fit_epochs`.
        """
        self._compile_once(make_optimizer)
        seed = epoch_seed(self)
        backup = single_backup(callbacks)
        if backup is None:
            return initial_epoch, seed
        if isinstance(x, tf.data.Dataset):
            raise ValueError("A ClusteringBackup needs x as an array: a stream has no "
                             "fingerprint to check a backup against.")
        restored_epoch, seed = backup.restore(self, x, seed)
        return max(initial_epoch, restored_epoch), seed

    def _fit_epochs(self, arrays, batch_size, epochs, initial_epoch, shuffle_seed, shuffle,
                    **fit_kwargs):
        """`keras.Model.fit` over `arrays` (rows aligned), shuffled per epoch with a
        permutation that depends only on (seed, epoch), so a resumed fit sees the
        batches an uninterrupted one would."""
        if is_multi_worker(self.distribute_strategy):
            return multi_worker_epochs(self, arrays, batch_size, epochs, initial_epoch,
                                       shuffle_seed if shuffle else None, **fit_kwargs)
        return fit_from(super(), arrays, batch_size, epochs, initial_epoch,
                        shuffle_seed if shuffle else None,
                        drop_remainder=self.FULL_BATCHES and len(arrays[0]) >= batch_size,
                        **fit_kwargs)

    def _fit_stream(self, dataset, epochs, initial_epoch, **fit_kwargs):
        """`keras.Model.fit` over a stream: each epoch is one pass over `dataset`, in
        the order (and shuffling) the dataset has."""
        return super().fit(dataset, epochs=epochs, initial_epoch=initial_epoch, shuffle=False,
                           **fit_kwargs)

    # ------------------------------------------------------------ state and saving
    def _add_row_state(self, name, trailing_shape=(), dtype="float32"):
        """A non-trainable `tf.Variable` of unknown leading size, saved with the model.

        Per-row training state (a target distribution, cluster assignments) is sized
        by the data, known only at fit time, so it cannot be a Keras weight.
        """
        variable = tf.Variable(
            tf.zeros((0, *trailing_shape), dtype), shape=tf.TensorShape([None, *trailing_shape]),
            trainable=False, name=name,
        )
        self._row_state[name] = variable
        return variable

    def save_own_variables(self, store):
        super().save_own_variables(store)
        for name, variable in self._row_state.items():
            store[name] = variable.numpy()

    def load_own_variables(self, store):
        super().load_own_variables(store)
        for name, variable in self._row_state.items():
            if name in store:
                variable.assign(np.asarray(store[name]))


def epoch_seed(model):
    """The seed of a fit's epoch order: `model.random_state`, else 0 under the
    multi-worker strategy (every worker must shuffle alike), else a fresh draw (which a
    backup stores, so a resumed run keeps it)."""
    if model.random_state is not None:
        return model.random_state
    if is_multi_worker(model.distribute_strategy):
        return 0
    return int(np.random.default_rng().integers(2**31 - 1))


def multi_worker_epochs(model, arrays, batch_size, epochs, initial_epoch=0, seed=None,
                        callbacks=None, verbose="auto", validation_data=None, **unsupported):
    """Trains `model` (a clustering model or a helper network of it) under the
    multi-worker strategy. Every worker builds the same epoch order (so `seed` must not
    be drawn per worker) and keeps its share of each global batch; the last partial
    batch of each epoch is dropped, so that every replica gets an equal share."""
    if validation_data is not None or any(v for v in unsupported.values()):
        raise ValueError(
            "Under MultiWorkerMirroredStrategy, fit takes no validation data and no "
            f"{sorted(k for k, v in unsupported.items() if v) or 'validation_data'}.")
    steps = len(arrays[0]) // batch_size
    if steps == 0:
        raise ValueError(f"batch_size={batch_size} is larger than the data "
                         f"({len(arrays[0])} rows): a multi-worker step needs a full batch.")
    dataset = epoch_batches(arrays, batch_size, initial_epoch, epochs, seed,
                            drop_remainder=True)
    return multi_worker_fit(model, dataset, steps, epochs, initial_epoch, callbacks, verbose)


def fit_from(model, arrays, batch_size, epochs, initial_epoch, seed, drop_remainder=False,
             **fit_kwargs):
    """`model.fit` over the seeded epochs `initial_epoch .. epochs - 1` of `arrays`
    (nothing to do, and an empty `History`, when a resumed run had finished them)."""
    if initial_epoch >= epochs:
        history = keras.callbacks.History()
        history.history = {}
        return history
    rows = len(arrays[0])
    steps = rows // batch_size if drop_remainder else math.ceil(rows / batch_size)
    return model.fit(epoch_batches(arrays, batch_size, initial_epoch, epochs, seed,
                                   drop_remainder=drop_remainder),
                     steps_per_epoch=steps, epochs=epochs, initial_epoch=initial_epoch,
                     shuffle=False, **fit_kwargs)


def epoch_batches(arrays, batch_size, first_epoch, epochs, seed=None, drop_remainder=False):
    """A `tf.data.Dataset` of the batches of epochs `first_epoch .. epochs - 1` of
    `arrays`: each epoch in the order `stateless_shuffle(range(n), (seed, epoch))`, or
    in row order when `seed` is None. Yields a tensor for one array, a tuple for more."""
    tensors = tuple(tf.convert_to_tensor(a) for a in arrays)
    n = len(arrays[0])

    def epoch_indices(epoch):
        indices = tf.range(n)
        if seed is not None:
            indices = tf.random.experimental.stateless_shuffle(
                indices, seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
        return tf.data.Dataset.from_tensor_slices(indices).batch(
            batch_size, drop_remainder=drop_remainder)

    def gather(indices):
        batch = tuple(tf.gather(t, indices) for t in tensors)
        return batch[0] if len(batch) == 1 else batch

    dataset = tf.data.Dataset.range(first_epoch, max(epochs, first_epoch)).flat_map(epoch_indices)
    return dataset.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def steps_per_epoch(x, batch_size):
    """Steps of one pass over arrays, or over a stream (then counted batch by batch)."""
    if not isinstance(x, tf.data.Dataset):
        return math.ceil(len(x) / batch_size)
    steps = int(x.cardinality())
    return steps if steps >= 0 else int(x.reduce(0, lambda count, _: count + 1))


def jit_default(jit_compile):
    """XLA only with a GPU unless asked: on CPU it made these networks about 2x slower."""
    if jit_compile is None:
        return _gpu_visible()
    return jit_compile


def _gpu_visible():
    return bool(tf.config.list_logical_devices("GPU"))
