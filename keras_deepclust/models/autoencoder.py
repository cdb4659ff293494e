"""The autoencoder part of a method: `EncoderClusteringModel` with a decoder from
`keras_deepclust.networks`, its pretraining and its reconstructions."""

import warnings

import keras
import tensorflow as tf

from keras_deepclust import losses, networks
from keras_deepclust.backup import single_backup
from keras_deepclust.distribute import check_distributed_fit, is_multi_worker
from keras_deepclust.models.encoder import EncoderClusteringModel
from keras_deepclust.models.trainer import (
    epoch_seed,
    fit_from,
    jit_default,
    multi_worker_epochs,
)


class AutoencoderClusteringModel(EncoderClusteringModel):
    """An `EncoderClusteringModel` whose encoder comes with a `decoder` (from
    `networks.BUILDERS`), and `pretrain`, which trains the autoencoder on reconstruction
    alone with `keras.Model.fit`.

    Subclasses add their clustering part in `_build_head()` and say how to pretrain
    (`PRETRAIN_EPOCHS`, `_default_pretrain_optimizer`).

    Args:
        output_activation: activation of the reconstruction (None = linear).
        augmentation: as in `EncoderClusteringModel`; `pretrain` then reconstructs
            augmented images, as DEC-DA (Guo et al., ACML 2018) does.
        scaling: as in `EncoderClusteringModel`, "auto" on tables giving min-max when
            the output activation is a sigmoid.
        **kwargs: `EncoderClusteringModel`'s (`network`, `embedding_dim`,
            `hidden_units`, `filters`, `kernel_sizes`, `activation`,
            `embedding_activation`, `sample_shape`, `random_state`, ...).
    """

    # Pretraining epochs when `pretrain(epochs=None)`, per network; its keys are the
    # networks the method offers (what `network="auto"` chooses from).
    PRETRAIN_EPOCHS = {"dense": 400, "conv": 200}
    # Whether the method's recipe starts from a pretrained autoencoder (the CLI
    # pretrains only these unless asked).
    NEEDS_PRETRAINING = True
    # Decoded centroids where `prototype_codes` gives codes for the decoder.
    DRAWS = ("reconstructions", "decoded_centroids")

    def __init__(self, n_clusters=10, output_activation=None, **kwargs):
        super().__init__(n_clusters=n_clusters, **kwargs)
        self.output_activation = output_activation

    # ----------------------------------------------------------------- building
    def _offered_networks(self):
        return tuple(self.PRETRAIN_EPOCHS)

    def _network_options(self):
        return {**super()._network_options(), "output_activation": self.output_activation}

    def _build_networks(self):
        self.encoder, self.decoder = networks.BUILDERS[self.network](
            self.sample_shape, embedding_dim=self.embedding_dim,
            random_state=self.random_state, **self._network_options(),
        )
        self._is_pretrained = self.add_weight(
            shape=(), dtype="int32", initializer="zeros", trainable=False, name="is_pretrained"
        )

    def _input_scaling_mode(self):
        """`scaling`, with "auto" on tables made "minmax" when the reconstruction ends
        in a sigmoid, which cannot reach standardised values beyond (0, 1)."""
        if self.scaling == "auto" and len(self.sample_shape) == 1 and \
                self.output_activation == "sigmoid":
            return "minmax"
        return super()._input_scaling_mode()

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
            initial_epoch, seed = backup.restore(self, x, epoch_seed(self),
                                                 network=autoencoder, phase="pretrain")
            history = backup.whole_history(fit_from(
                autoencoder, (x, x), batch_size, epochs, initial_epoch, seed, verbose=verbose,
                callbacks=callbacks))
        elif isinstance(x, tf.data.Dataset):
            if is_multi_worker(self.distribute_strategy):
                raise ValueError("Multi-worker pretraining takes x as an array, not a dataset.")
            history = autoencoder.fit(x.map(lambda batch: (batch, batch)), epochs=epochs,
                                      verbose=verbose, callbacks=callbacks)
        elif is_multi_worker(self.distribute_strategy):
            history = multi_worker_epochs(
                autoencoder, (x, x), batch_size, epochs, seed=epoch_seed(self),
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
        """The autoencoder `pretrain` fits, and its compile loss. With an `augmentation`
        it reconstructs the augmented batch, as DEC-DA does: the reconstruction error is
        then added by the network itself (compile loss None)."""
        inputs = keras.Input(shape=self.sample_shape)
        augmentation = self.augmentation
        clean = inputs if augmentation is None else augmentation(inputs)
        noisy = (keras.layers.GaussianNoise(noise_stddev, seed=self.random_state)(clean)
                 if noise_stddev > 0 else clean)
        reconstruction = self.decoder(self.encoder(noisy))
        if augmentation is None:
            return keras.Model(inputs, reconstruction, name="autoencoder"), "mse"
        reconstruction = _AddReconstructionLoss()(clean, reconstruction)
        return keras.Model(inputs, reconstruction, name="autoencoder"), None

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

    # ------------------------------------------------------------------ fitting
    def _check_ready_to_fit(self):
        if self.NEEDS_PRETRAINING and not self.is_pretrained:
            warnings.warn("The autoencoder was not pretrained: call pretrain(x) first, or fit "
                          "starts from the codes of a random network.", stacklevel=4)

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

    def get_config(self):
        return {**super().get_config(), "output_activation": self.output_activation}


class _AddReconstructionLoss(keras.layers.Layer):
    """Adds the mean squared error between a target and a reconstruction to the
    network's losses and passes the reconstruction on."""

    def call(self, target, reconstruction):
        self.add_loss(keras.ops.mean(losses.reconstruction_error(target, reconstruction)))
        return reconstruction

