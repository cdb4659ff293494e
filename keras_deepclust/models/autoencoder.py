"""The shared base of methods built on one autoencoder from `keras_deepclust.networks`."""

import math
import warnings

import keras
import numpy as np
import tensorflow as tf

from keras_deepclust import losses, networks
from keras_deepclust._validation import check_positive_int
from keras_deepclust.backup import single_backup
from keras_deepclust.distribute import check_distributed_fit, is_multi_worker, multi_worker_fit
from keras_deepclust.layers import ImageAugmentation, InputScaling, NearestCentroidSoftmax
from keras_deepclust.models.base import ClusteringModel


class AutoencoderClusteringModel(ClusteringModel):
    """A `ClusteringModel` with an `encoder` and a `decoder` from `networks.BUILDERS`.

    Subclasses add their clustering part in `_build_head()` and say how to pretrain
    (`PRETRAIN_EPOCHS`, `_default_pretrain_optimizer`). `pretrain` trains the
    autoencoder on reconstruction alone with `keras.Model.fit`.

    Args:
        n_clusters: number of clusters K (>= 2).
        network: "dense" (d-500-500-2000-10 by default), "conv"
            (conv32(5)-conv64(5)-conv128(3)-FC10 by default), or "auto": "conv" for
            image-shaped samples `(h, w, c)` when the method has a conv network,
            "dense" otherwise (resolved when the model is built).
        embedding_dim: size of the code.
        hidden_units: widths of the dense encoder (network="dense").
        filters: filters of the conv encoder (network="conv").
        kernel_sizes: kernel sizes of the conv encoder (network="conv").
        activation: activation of the hidden layers.
        embedding_activation: activation of the code (None = linear).
        output_activation: activation of the reconstruction (None = linear).
        sample_shape: shape of one sample; inferred from the data when None.
        augmentation: None, or a Keras layer that augments a batch of images when
            called with `training=True`, e.g. `layers.ImageAugmentation()`: `pretrain`
            then reconstructs augmented images, as DEC-DA (Guo et al., ACML 2018)
            does. Needs image-shaped samples `(h, w, c)`; prediction and export never
            augment. "auto": DEC-DA's `ImageAugmentation()` (shifts of up to a tenth of
            the size, rotations of up to 10 degrees, seeded by `random_state`) for
            images, None for tables (resolved when the model is built).
        scaling: how the first `pretrain`/`fit` scales the raw inputs, a layer saved
            and exported with the model (`input_scaling`): "auto" takes images to
            [0, 1] and standardises tables per feature (min-max when the output
            activation is a sigmoid); "standard", "minmax" or "none".
        random_state: int seed for weights, shuffling, noise and k-means, or None.
    """

    # Pretraining epochs when `pretrain(epochs=None)`, per network.
    PRETRAIN_EPOCHS = {"dense": 400, "conv": 200}
    # Whether the method's recipe starts from a pretrained autoencoder (the CLI
    # pretrains only these unless asked).
    NEEDS_PRETRAINING = True
    # Every method pretrains through `pretrain`, so every one can augment its pretraining.
    OPTIONS = ClusteringModel.OPTIONS + ("augmentation",)

    def __init__(
        self,
        n_clusters=10,
        network="dense",
        embedding_dim=10,
        hidden_units=networks.DENSE_HIDDEN_UNITS,
        filters=networks.CONV_FILTERS,
        kernel_sizes=networks.CONV_KERNEL_SIZES,
        activation="relu",
        embedding_activation=None,
        output_activation=None,
        sample_shape=None,
        augmentation=None,
        random_state=None,
        **kwargs,
    ):
        super().__init__(
            n_clusters=n_clusters, sample_shape=None, random_state=random_state, **kwargs
        )
        if network not in (*networks.BUILDERS, "auto"):
            raise ValueError(f"network must be one of {sorted(networks.BUILDERS) + ['auto']}, "
                             f"got {network!r}.")
        self.network = network
        self.embedding_dim = check_positive_int(embedding_dim, "embedding_dim")
        self.hidden_units = tuple(hidden_units)
        self.filters = tuple(filters)
        self.kernel_sizes = tuple(kernel_sizes)
        self.activation = activation
        self.embedding_activation = embedding_activation
        self.output_activation = output_activation
        if isinstance(augmentation, dict):  # from get_config
            augmentation = keras.saving.deserialize_keras_object(augmentation)
        if not (augmentation is None or isinstance(augmentation, keras.layers.Layer)
                or (isinstance(augmentation, str) and augmentation == "auto")):
            raise TypeError("augmentation must be a Keras layer, 'auto' or None, got "
                            f"{augmentation!r}.")
        self.augmentation = augmentation
        self._pending_sample_shape = sample_shape
        self._row_state = {}

    def _build_if_shape_known(self):
        """Subclasses call this at the end of `__init__`, once their own state exists."""
        if self._pending_sample_shape is not None:
            self.build((None, *self._pending_sample_shape))

    # ----------------------------------------------------------------- building
    def _network_options(self):
        options = {"activation": self.activation, "embedding_activation": self.embedding_activation,
                   "output_activation": self.output_activation}
        if self.network == "dense":
            options["hidden_units"] = self.hidden_units
        else:
            options.update(filters=self.filters, kernel_sizes=self.kernel_sizes)
        return options

    def build(self, input_shape):
        if self.built:
            return
        self.sample_shape = tuple(int(s) for s in input_shape[1:])
        self._resolve_auto_options()
        if self.augmentation is not None and len(self.sample_shape) != 3:
            raise ValueError(
                "augmentation needs image-shaped samples (height, width, channels), got "
                f"samples of shape {self.sample_shape}.")
        self.input_scaling = InputScaling(self._input_scaling_mode(), name="input_scaling")
        self.input_scaling.build((None, *self.sample_shape))
        self.encoder, self.decoder = networks.BUILDERS[self.network](
            self.sample_shape, embedding_dim=self.embedding_dim,
            random_state=self.random_state, **self._network_options(),
        )
        self._is_pretrained = self.add_weight(
            shape=(), dtype="int32", initializer="zeros", trainable=False, name="is_pretrained"
        )
        self._build_head()
        self.built = True

    def _resolve_auto_options(self):
        """Replaces `network="auto"` and `augmentation="auto"` by what suits the samples."""
        images = len(self.sample_shape) == 3
        if self.network == "auto":
            self.network = "conv" if images and "conv" in self.PRETRAIN_EPOCHS else "dense"
        if isinstance(self.augmentation, str):  # "auto"
            self.augmentation = ImageAugmentation(seed=self.random_state) if images else None

    def _input_scaling_mode(self):
        """`scaling`, with "auto" on tables made "minmax" when the reconstruction ends
        in a sigmoid, which cannot reach standardised values beyond (0, 1)."""
        if self.scaling == "auto" and len(self.sample_shape) == 1:
            return "minmax" if self.output_activation == "sigmoid" else "standard"
        return self.scaling

    def _build_head(self):
        """Creates the clustering layers on top of the code (subclass hook)."""

    @property
    def is_pretrained(self):
        """True once `pretrain` has run (saved with the model)."""
        return self.built and bool(self._is_pretrained.numpy())

    # -------------------------------------------------------------- pretraining
    def _default_pretrain_optimizer(self):
        return keras.optimizers.Adam()

    def pretrain(
        self,
        x,
        epochs=None,
        batch_size=256,
        optimizer=None,
        noise_stddev=0.0,
        verbose="auto",
        callbacks=None,
        validation_split=0.0,
        jit_compile=None,
        steps_per_execution=1,
    ):
        """Trains the autoencoder on reconstruction (mean squared error) alone.

        Args:
            x: training data, `(n_samples, ...)`, or a `tf.data.Dataset` of batches of
                samples (data larger than memory, e.g. `datasets.stream(path)`; then
                `batch_size` is the dataset's own).
            epochs: passes over `x`; None takes the method's paper setting
                (`PRETRAIN_EPOCHS`).
            batch_size: samples per step.
            optimizer: a Keras optimizer or its name; None takes the method's paper
                setting.
            noise_stddev: std of Gaussian noise added to the inputs (denoising AE).
                A model with an `augmentation` pretrains on augmented batches and
                reconstructs the augmented images, as DEC-DA does.
            verbose, callbacks, validation_split: as in `keras.Model.fit`. With a
                `keras_deepclust.backup.ClusteringBackup` among the callbacks, the
                pretraining resumes from its backup and shuffles by (seed, epoch).
            jit_compile: XLA-compile the step; None compiles only when a GPU is
                visible (on CPU, XLA made these small networks about 2x slower).
            steps_per_execution: optimizer steps per call of the compiled function
                (see `benchmarks/README.md` for when it pays).

        Returns:
            The `History` of the autoencoder training.
        """
        x = self.prepare_inputs(x, adapt=True)
        check_distributed_fit(batch_size, self.distribute_strategy)
        if not noise_stddev >= 0:
            raise ValueError(f"noise_stddev must be >= 0, got {noise_stddev!r}.")
        self._seed()
        epochs = self.PRETRAIN_EPOCHS[self.network] if epochs is None else epochs
        with self.distribute_strategy.scope():  # the strategy the model was created under
            autoencoder, loss = self._pretraining_network(noise_stddev)
            autoencoder.compile(
                optimizer=optimizer or self._default_pretrain_optimizer(), loss=loss,
                jit_compile=jit_default(jit_compile), steps_per_execution=steps_per_execution,
            )
        backup = single_backup(callbacks)
        if backup is not None:
            if isinstance(x, tf.data.Dataset) or is_multi_worker(self.distribute_strategy):
                raise ValueError("A pretraining backup needs x as an array on one machine.")
            # Resumable pretraining shuffles by (seed, epoch), like the clustering fits.
            initial_epoch, seed = backup.restore(self, x, self._epoch_seed(),
                                                 network=autoencoder, phase="pretrain")
            history = backup.whole_history(_fit_from(
                autoencoder, (x, x), batch_size, epochs, initial_epoch, seed, verbose=verbose,
                callbacks=callbacks))
        elif isinstance(x, tf.data.Dataset):
            if is_multi_worker(self.distribute_strategy):
                raise ValueError("Multi-worker pretraining takes x as an array, not a dataset.")
            history = autoencoder.fit(x.map(lambda batch: (batch, batch)), epochs=epochs,
                                      verbose=verbose, callbacks=callbacks)
        elif is_multi_worker(self.distribute_strategy):
            history = self._multi_worker_fit(
                autoencoder, (x, x), batch_size, epochs, seed=self._epoch_seed(),
                callbacks=callbacks, verbose=verbose, validation_split=validation_split)
        else:
            history = autoencoder.fit(
                x, x, epochs=epochs, batch_size=batch_size, verbose=verbose,
                callbacks=callbacks, validation_split=validation_split,
            )
        self._is_pretrained.assign(1)
        self._after_pretraining()
        return history

    def _pretraining_network(self, noise_stddev):
        """The autoencoder `pretrain` fits, and its compile loss. With an augmentation
        (see `_augmentation`) it reconstructs the augmented batch, as DEC-DA does: the
        reconstruction error is then added by the network itself (compile loss None)."""
        inputs = keras.Input(shape=self.sample_shape)
        augmentation = self._augmentation()
        clean = inputs if augmentation is None else augmentation(inputs)
        noisy = (keras.layers.GaussianNoise(noise_stddev, seed=self.random_state)(clean)
                 if noise_stddev > 0 else clean)
        reconstruction = self.decoder(self.encoder(noisy))
        if augmentation is None:
            return keras.Model(inputs, reconstruction, name="autoencoder"), "mse"
        reconstruction = _AddReconstructionLoss()(clean, reconstruction)
        return keras.Model(inputs, reconstruction, name="autoencoder"), None

    def _augmentation(self):
        """The layer that augments training batches, or None."""
        return self.augmentation

    def _after_pretraining(self):
        """Forgets clustering state that belonged to the old codes (subclass hook)."""

    def with_n_clusters(self, n_clusters):
        """A new model of the same kind for another K that keeps this model's
        (pretrained) autoencoder weights; used to choose K after one pretraining."""
        if not self.built:
            raise ValueError("The model is not built yet: pretrain it first.")
        clone = type(self)(**dict(self.get_config(), n_clusters=n_clusters))
        return clone.copy_autoencoder_from(self)

    def copy_autoencoder_from(self, other):
        """Takes the encoder and decoder weights (and pretrained state) of `other`, a
        model with the same autoencoder, e.g. to start several methods from one
        pretraining. Returns self."""
        if not other.built:
            raise ValueError("The source model is not built yet: pretrain it first.")
        if not self.built:
            with self.distribute_strategy.scope():
                self.build((None, *other.sample_shape))
        pairs = ((self.input_scaling, other.input_scaling), (self.encoder, other.encoder),
                 (self.decoder, other.decoder))
        for mine, theirs in pairs:
            shapes = [tuple(w.shape) for w in mine.weights]
            if shapes != [tuple(w.shape) for w in theirs.weights]:
                raise ValueError(
                    f"The {mine.name}s differ: {self.name} has weight shapes {shapes}, "
                    f"{other.name} has {[tuple(w.shape) for w in theirs.weights]}."
                )
            mine.set_weights(theirs.get_weights())
        self._is_pretrained.assign(int(other.is_pretrained))
        self._after_pretraining()
        return self

    # --------------------------------------------------------- the fit skeleton
    # Epochs of `fit(epochs=None)`: the method's paper (None: the method decides, see
    # `_default_epochs`).
    EPOCHS = None
    # What the "fit() does not use labels" error adds for this method.
    LABELS_HINT = ""

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
        if self.NEEDS_PRETRAINING and not self.is_pretrained:
            warnings.warn("The autoencoder was not pretrained: call pretrain(x) first, or fit "
                          "starts from the codes of a random network.", stacklevel=3)
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
        return history

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
        seed = self._epoch_seed()
        backup = single_backup(callbacks)
        if backup is None:
            return initial_epoch, seed
        if isinstance(x, tf.data.Dataset):
            raise ValueError("A ClusteringBackup needs x as an array: a stream has no "
                             "fingerprint to check a backup against.")
        restored_epoch, seed = backup.restore(self, x, seed)
        return max(initial_epoch, restored_epoch), seed

    def _epoch_seed(self):
        """The seed of the epoch order: `random_state`, else 0 under the multi-worker
        strategy (every worker must shuffle alike), else a fresh draw (which a backup
        stores, so a resumed run keeps it)."""
        if self.random_state is not None:
            return self.random_state
        if is_multi_worker(self.distribute_strategy):
            return 0
        return int(np.random.default_rng().integers(2**31 - 1))

    def _fit_epochs(self, arrays, batch_size, epochs, initial_epoch, shuffle_seed, shuffle,
                    **fit_kwargs):
        """`keras.Model.fit` over `arrays` (rows aligned), shuffled per epoch with a
        permutation that depends only on (seed, epoch), so a resumed fit sees the
        batches an uninterrupted one would."""
        if is_multi_worker(self.distribute_strategy):
            return self._multi_worker_fit(self, arrays, batch_size, epochs, initial_epoch,
                                          shuffle_seed if shuffle else None, **fit_kwargs)
        return _fit_from(super(), arrays, batch_size, epochs, initial_epoch,
                         shuffle_seed if shuffle else None, **fit_kwargs)

    def _fit_stream(self, dataset, epochs, initial_epoch, **fit_kwargs):
        """`keras.Model.fit` over a stream: each epoch is one pass over `dataset`, in
        the order (and shuffling) the dataset has."""
        return super().fit(dataset, epochs=epochs, initial_epoch=initial_epoch, shuffle=False,
                           **fit_kwargs)

    def _multi_worker_fit(self, model, arrays, batch_size, epochs, initial_epoch=0, seed=None,
                          callbacks=None, verbose="auto", validation_data=None, **unsupported):
        """Trains `model` (this model or a helper network of it) under the multi-worker
        strategy. Every worker builds the same epoch order (so `seed` must not be drawn
        per worker) and keeps its share of each global batch; the last partial batch
        of each epoch is dropped, so that every replica gets an equal share."""
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

    def reconstruct(self, x, batch_size=256, verbose=0):
        """Autoencoder reconstruction of `x` (same shape as `x`)."""
        x = self.prepare_inputs(x)  # builds the model on first use
        codes = self.encoder.predict(x, batch_size=batch_size, verbose=verbose)
        return self.decoder.predict(codes, batch_size=batch_size, verbose=verbose)

    def prototype_codes(self, x, labels):
        """The code the decoder draws as each cluster's prototype, `(K, embedding_dim)`:
        the centroids, for a head whose centroids live in the codes' space
        (`code_centroids`); None for a model without such centroids. `x` and `labels`
        (its rows' clusters) serve the heads that read another space (see `N2D`)."""
        return self.code_centroids() if hasattr(self, "code_centroids") else None

    def finite_codes(self, x, batch_size=256):
        """The autoencoder's codes of `x`, with a clear error when training diverged."""
        x = self.prepare_inputs(x)  # builds the model on first use
        codes = self.encoder.predict(x, batch_size=batch_size, verbose=0)
        if not np.isfinite(codes).all():
            raise ValueError(
                "The encoder produced NaN or infinite codes; training diverged. Lower the "
                "learning rate or check the input scaling."
            )
        return codes

    def selection_features(self, x, batch_size=256):
        """What a sweep over K clusters (`model_selection.sweep_n_clusters`): the codes."""
        return self.finite_codes(x, batch_size=batch_size)

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

    def add_weight(self, *args, **kwargs):
        """`keras.Model.add_weight`, remembering the weight as one of this model's own
        (saved by `save_own_variables`; the sublayers save theirs)."""
        variable = super().add_weight(*args, **kwargs)
        self.__dict__.setdefault("_own_weights", []).append(variable)
        return variable

    def _own_variables(self):
        return self.__dict__.get("_own_weights", [])

    def save_own_variables(self, store):
        for i, variable in enumerate(self._own_variables()):
            store[str(i)] = variable.numpy()
        for name, variable in self._row_state.items():
            store[name] = variable.numpy()

    def load_own_variables(self, store):
        for i, variable in enumerate(self._own_variables()):
            variable.assign(store[str(i)])
        for name, variable in self._row_state.items():
            if name in store:
                variable.assign(np.asarray(store[name]))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "network": self.network,
                "embedding_dim": self.embedding_dim,
                "hidden_units": list(self.hidden_units),
                "filters": list(self.filters),
                "kernel_sizes": list(self.kernel_sizes),
                "activation": self.activation,
                "embedding_activation": self.embedding_activation,
                "output_activation": self.output_activation,
                "augmentation": self._augmentation_config(),
            }
        )
        return config

    def _augmentation_config(self):
        if self.augmentation is None or isinstance(self.augmentation, str):
            return self.augmentation
        config = keras.saving.serialize_keras_object(self.augmentation)
        # Built again on its first call; kept, its shape tuple would come back a list.
        config.pop("build_config", None)
        return config


class NearestCentroidHead:
    """For methods whose head is `centroid_head`, a `NearestCentroidSoftmax` on the code
    (AEC, DAC): the head, the model's call and the centroids. Mixed in before
    `AutoencoderClusteringModel`; the method calls `_build_centroid_head()`."""

    def _build_centroid_head(self):
        self.centroid_head = NearestCentroidSoftmax(self.n_clusters, name="centroid_head")
        self.centroid_head.build((None, self.embedding_dim))

    def call(self, inputs, training=None):
        return self.centroid_head(self.encoder(inputs, training=training))

    def soft_assignment_head(self):
        return self.centroid_head

    def code_centroids(self):
        """The cluster centroids in code space, `(K, embedding_dim)`."""
        return self.centroid_head.centroids.numpy()


class _AddReconstructionLoss(keras.layers.Layer):
    """Adds the mean squared error between a target and a reconstruction to the
    network's losses and passes the reconstruction on."""

    def call(self, target, reconstruction):
        self.add_loss(keras.ops.mean(losses.reconstruction_error(target, reconstruction)))
        return reconstruction


def _fit_from(model, arrays, batch_size, epochs, initial_epoch, seed, **fit_kwargs):
    """`model.fit` over the seeded epochs `initial_epoch .. epochs - 1` of `arrays`
    (nothing to do, and an empty `History`, when a resumed run had finished them)."""
    if initial_epoch >= epochs:
        history = keras.callbacks.History()
        history.history = {}
        return history
    return model.fit(epoch_batches(arrays, batch_size, initial_epoch, epochs, seed),
                     steps_per_epoch=math.ceil(len(arrays[0]) / batch_size), epochs=epochs,
                     initial_epoch=initial_epoch, shuffle=False, **fit_kwargs)



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
