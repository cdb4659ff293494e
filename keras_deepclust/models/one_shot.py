"""The fit of the methods that fit their head once, with no epochs (the two-stage
methods, N2D, `auto`): the fitting part a method composes with its networks, as the
iterative methods compose `IterativeClusteringModel`."""

import keras

from keras_deepclust.models.base import ClusteringModel

# `keras.Model.fit` arguments that only a fit in epochs can honour.
EPOCH_ARGUMENTS = ("epochs", "callbacks", "validation_data", "validation_split",
                   "initial_epoch", "steps_per_epoch")


class OneShotClusteringModel(ClusteringModel):
    """A `ClusteringModel` whose `fit` fits its head once on the data (a clusterer on
    the codes, a manifold): no epochs. A method supplies `_fit_once`, which returns the
    fit's logs."""

    ITERATIVE_FIT = False

    def fit(self, x=None, y=None, batch_size=256, verbose="auto", shuffle=True, **kwargs):
        """Fits the method's head on `x` once (see the method's `_fit_once`).

        Args:
            x: the data to cluster, `(n_samples, ...)`, or, where the method streams
                (`STREAMING_FIT`), a `tf.data.Dataset` of batches.
            y: must be None (labels are not used).
            batch_size: batch size of the encoding.
            verbose: prints the fit's summary unless 0.
            shuffle: whether a method that trains after fitting its head (`auto`'s
                refinement) shuffles its batches.
            **kwargs: `keras.Model.fit` arguments about epochs (`epochs`,
                `callbacks`, `validation_data`, ...) are refused with a ValueError:
                train the autoencoder with `pretrain` instead.

        Returns:
            A `keras.callbacks.History` with one entry per log of the fit (the
            method's docstring lists them), `cluster_sizes` and `empty_clusters`.
        """
        self._refuse_epoch_arguments(kwargs)
        x, _ = self._check_fit_arguments(x, y, fit_kwargs=kwargs)
        logs = self._fit_once(x, batch_size=batch_size, verbose=verbose, shuffle=shuffle)
        history = keras.callbacks.History()
        history.history = {name: [value] for name, value in logs.items()}
        return self._record_fit_labels(x, history, batch_size)

    def _fit_once(self, x, batch_size, verbose, shuffle):
        """Fits the head on the prepared `x`; returns the logs (a dict of numbers)."""
        raise NotImplementedError

    def _refuse_epoch_arguments(self, fit_kwargs):
        def is_set(value):  # an array (validation_data) has no truth value: test by type
            return value is not None and not (isinstance(value, (int, float)) and value == 0)

        refused = sorted(name for name in EPOCH_ARGUMENTS if is_set(fit_kwargs.get(name)))
        if refused:
            raise ValueError(
                f"{type(self).__name__}.fit fits its clusterer once, with no epochs, so it "
                f"cannot honour {', '.join(refused)}: train the autoencoder with "
                "pretrain(x, epochs=..., callbacks=...) instead.")
        unknown = sorted(set(fit_kwargs) - set(EPOCH_ARGUMENTS)
                         - {"sample_weight", "class_weight"})
        if unknown:
            raise TypeError(f"{type(self).__name__}.fit got unexpected arguments {unknown}.")
