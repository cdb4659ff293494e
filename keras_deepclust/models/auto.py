"""The package's recommended recipe, method `auto`: N2D on the codes of an autoencoder
chosen for the data's kind, refined as DEC-DA on images large enough to augment.

Images get N2D's manifold clustering on the codes of a convolutional autoencoder
pretrained on augmented images (DEC-DA's shifts and rotations); tables get it on a
dense autoencoder's codes. On images of at least `REFINE_MIN_SIDE` pixels a side, the
manifold's partition then starts DEC-DA's clustering phase: a Student-t head at each
cluster's mean code, and the encoder and head trained on augmented images towards the
sharpened target computed on the clean ones. The refined model assigns with encoder and
Student-t head alone. The settings are the same on every data set; the evidence that
chose them, over data sets and seeds, is in `docs/auto.md`.
"""

import time

import keras
import numpy as np
import tensorflow as tf

from keras_deepclust import losses, options
from keras_deepclust._validation import check_labels, check_positive_int
from keras_deepclust.distribute import is_default
from keras_deepclust.layers import ClusteringLayer
from keras_deepclust.metrics import adjusted_rand_index
from keras_deepclust.models.base import register_method
from keras_deepclust.models.n2d import N2D

# A tenth of the side, DEC-DA's shift, is then at least 1.6 pixels: a real translation.
# On 8 x 8 images (a shift under one pixel) the refinement lost on every seed.
REFINE_MIN_SIDE = 16


class RefinementHead(ClusteringLayer):
    """`auto`'s Student-t head. Files saved before `auto` had one lack its centroids:
    such a model was not refined, so it loads with the head unset (`required=False`);
    a refined model's file must hold them."""

    def __init__(self, n_clusters, required=True, **kwargs):
        super().__init__(n_clusters, **kwargs)
        self.required = required

    def load_own_variables(self, store):
        if not self.required and not len(store.keys()):
            return
        super().load_own_variables(store)


@register_method("auto")
@keras.saving.register_keras_serializable(package="keras_deepclust")
class AutoClustering(N2D):
    """The recommended recipe: N2D (UMAP + Gaussian mixture on the codes) with a conv
    autoencoder pretrained on augmented images for images, a dense one for tables; on
    images of at least 16 pixels a side, refined by DEC-DA's clustering phase.

    Workflow: `pretrain(x)` trains the autoencoder (on augmented images); `fit(x)` fits
    N2D's manifold and mixture, then, when it `refines` `x`, places a Student-t head at
    the mean code of each cluster and trains encoder and head for `refine_epochs`:
    each epoch computes the target P (DEC's sharpened soft assignments) on the clean
    rows, then fits the soft assignments of augmented rows to it (KL(P || Q), Adam).
    Afterwards `refined` is True and the model assigns with encoder and Student-t head
    (what `predict`, `embed` and the exported assigner use); the manifold and mixture
    heads stay in the model but are no longer used.

    Args:
        n_clusters: number of clusters K (>= 2).
        network, augmentation: "auto" (a conv autoencoder and DEC-DA's augmentation for
            images, a dense one without for tables), or as in `N2D`.
        refine: "auto" (refine images whose height and width are at least
            `REFINE_MIN_SIDE`, when there is an augmentation, under the default
            strategy), True (refine whatever the data, without augmentation if there is
            none; under another strategy a ValueError) or False (N2D alone).
        refine_epochs: epochs of the refinement.
        refine_learning_rate: Adam's learning rate for the refinement.
        refine_batch_size: its batch size.
        refined: set by `fit` (and kept in the config so that a saved model assigns as
            it did); leave it False.
        **kwargs: `N2D` arguments.

    Example:

    ```python
    model = AutoClustering(n_clusters=10, random_state=0)
    model.pretrain(x)
    history = model.fit(x)
    model.refined, history.history["refine_agreement"]
    ```
    """

    OPTIONS = N2D.OPTIONS + ("refine", "refine_epochs")
    PAPER = ("N2D (McConville et al., ICPR 2020) on codes pretrained as DEC-DA's, then "
             "DEC-DA's clustering phase on images (Guo, Zhu, Liu and Yin, Deep Embedded "
             "Clustering with Data Augmentation, ACML 2018)")

    def __init__(self, n_clusters=10, network="auto", augmentation="auto", refine="auto",
                 refine_epochs=60, refine_learning_rate=1e-4, refine_batch_size=256,
                 refined=False, **kwargs):
        options.check("refine", refine)
        if not refine_learning_rate > 0:
            raise ValueError(
                f"refine_learning_rate must be > 0, got {refine_learning_rate!r}.")
        self.refined = bool(refined)  # read when the head is built, maybe in __init__
        super().__init__(n_clusters=n_clusters, network=network, augmentation=augmentation,
                         **kwargs)
        self.refine = refine
        self.refine_epochs = options.check("refine_epochs", refine_epochs)
        self.refine_learning_rate = float(refine_learning_rate)
        self.refine_batch_size = check_positive_int(refine_batch_size, "refine_batch_size")

    # ----------------------------------------------------------------- building
    def _build_head(self):
        super()._build_head()
        self.clustering = RefinementHead(self.n_clusters, required=self.refined,
                                         name="clustering")
        self.clustering.build((None, self.embedding_dim))

    def call(self, inputs, training=None):
        if self.refined:
            return self.clustering(self.encoder(inputs, training=training))
        return super().call(inputs, training=training)

    def assignment_encoder(self):
        return self.encoder if self.refined else super().assignment_encoder()

    def soft_assignment_head(self):
        return self.clustering if self.refined else super().soft_assignment_head()

    def code_centroids(self):
        """The Student-t centroids once refined, else the mixture's means (on the
        manifold)."""
        return self.clustering.centroids.numpy() if self.refined else super().code_centroids()

    def prototype_codes(self, x, labels):
        """The Student-t centroids once refined (they are codes), else each cluster's mean
        code."""
        return self.code_centroids() if self.refined else super().prototype_codes(x, labels)

    def _set_refined(self, refined):
        self.refined = refined
        self.predict_function = None  # traced with the other head

    def _after_pretraining(self):
        super()._after_pretraining()
        self._set_refined(False)

    # ------------------------------------------------------------------ fitting
    def refines(self, x):
        """`(bool, reason)`: whether `fit(x)` refines, and why not when it does not."""
        if self.refine is False:
            return False, "refine=False"
        if not is_default(self.distribute_strategy):
            self._check_strategy()
            return False, "the refinement runs under the default strategy only"
        reasons = []
        if self.augmentation is None:
            reasons.append("there is no augmentation")
        if len(self.sample_shape) != 3:
            reasons.append("the samples are not images")
        elif min(self.sample_shape[:2]) < REFINE_MIN_SIDE:
            reasons.append(f"images of {self.sample_shape[0]} x {self.sample_shape[1]} pixels "
                           f"are smaller than {REFINE_MIN_SIDE} a side")
        return self.refine is True or not reasons, "; ".join(reasons)

    def _check_strategy(self):
        if self.refine is True and not is_default(self.distribute_strategy):
            raise ValueError("refine=True, but the refinement runs under the default strategy "
                             "only.")

    def _fit_once(self, x, batch_size, verbose, shuffle):
        """N2D's fit (manifold, then mixture); then, when `refines(x)`, DEC-DA's
        clustering phase from the mixture's partition.

        Logs: N2D's, with `refined` (1 or 0) and, after a refinement, `refine_loss` (the
        last epoch's mean KL), `refine_agreement` (adjusted Rand index between the
        mixture's partition and the refined one: how much the refinement kept) and
        `refine_changed` (share of rows whose label changed in the last epoch) and
        `refine_seconds`.
        """
        self._check_strategy()  # before any work
        self._set_refined(False)
        logs = super()._fit_once(x, batch_size, verbose, shuffle)
        refine, reason = self.refines(x)
        partition = self.predict_labels(x, batch_size=batch_size) if refine else None
        if refine and len(np.unique(partition)) < self.n_clusters:
            refine, reason = False, "the partition has empty clusters"
        logs["refined"] = int(refine)
        if not refine:
            if verbose != 0 and self.refine is not False:
                print(f"auto: not refined ({reason}).")
            return logs
        logs.update(self.refine_partition(x, partition, shuffle=shuffle, verbose=verbose))
        return logs

    def refine_partition(self, x, labels, shuffle=True, verbose="auto"):
        """DEC-DA's clustering phase from the partition `labels` of `x`: the Student-t
        head at each cluster's mean code, then `refine_epochs` epochs (see the class).
        Afterwards the model assigns with encoder and Student-t head.

        Args:
            x: the data, `(n_samples, ...)`, or a `tf.data.Dataset` of batches (read in
                its own order and batches, twice an epoch: once for the target, once to
                train).
            labels: the partition of `x`'s rows, `(n_samples,)` ints in [0, K).
            shuffle: whether an array's rows are shuffled each epoch (seeded by
                `random_state`), in batches of `refine_batch_size`.
            verbose: 1 prints each epoch, 0 nothing.

        Returns:
            `refine_loss`, `refine_agreement`, `refine_changed` (see `_fit_once`) and
            `refine_seconds` (wall clock).
        """
        start = time.perf_counter()
        x = self.prepare_inputs(x)
        codes = self.finite_codes(x, batch_size=1024)
        labels = check_labels(labels, len(codes))
        present = np.unique(labels)
        if not set(present.tolist()) <= set(range(self.n_clusters)):
            raise ValueError(f"labels must be cluster ids in [0, {self.n_clusters}), got "
                             f"{present.min()} to {present.max()}.")
        if len(present) < self.n_clusters:
            raise ValueError(f"The partition has {len(present)} non-empty clusters of "
                             f"{self.n_clusters}: every cluster needs rows for its centroid.")
        self.clustering.set_centroids(np.stack(
            [codes[labels == k].mean(axis=0) for k in range(self.n_clusters)]))
        self._seed()
        rng = np.random.default_rng(self.random_state)
        optimizer = keras.optimizers.Adam(self.refine_learning_rate)
        variables = self.encoder.trainable_variables + self.clustering.trainable_variables
        # A fresh copy, so that its random draws start from its seed whatever came before.
        augmentation = (keras.layers.Identity() if self.augmentation is None else
                        type(self.augmentation).from_config(self.augmentation.get_config()))

        @tf.function
        def step(rows, target):
            with tf.GradientTape() as tape:
                q = tf.cast(self.clustering(self.encoder(augmentation(rows, training=True),
                                                         training=True)), tf.float32)
                loss = tf.reduce_mean(losses.kl_divergence(target, q))
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            return loss

        previous = labels
        for epoch in range(self.refine_epochs):
            if epoch:  # the first epoch's codes are those the centroids came from
                codes = self.encoder.predict(x, batch_size=1024, verbose=0)
            q = np.asarray(self.clustering(codes), dtype=np.float32)
            current = q.argmax(axis=1)
            changed, previous = float(np.mean(current != previous)), current
            target = np.asarray(losses.target_distribution(q))
            epoch_losses = [float(step(rows, target[index]))
                            for rows, index in self._refine_batches(x, rng, shuffle)]
            if verbose == 1:
                print(f"refine epoch {epoch + 1}/{self.refine_epochs}: KL "
                      f"{np.mean(epoch_losses):.4g}, labels changed {changed:.4f}")
        self._set_refined(True)
        refined = self.predict_labels(x)
        logs = {"refine_loss": float(np.mean(epoch_losses)),
                "refine_agreement": adjusted_rand_index(labels, refined),
                "refine_changed": float(np.mean(refined != previous)),
                "refine_seconds": time.perf_counter() - start}
        if verbose != 0:
            print("auto: refined as DEC-DA for "
                  f"{self.refine_epochs} epochs: " + ", ".join(
                      f"{name} {value:.4g}" for name, value in logs.items()))
        return logs

    def _refine_batches(self, x, rng, shuffle):
        """`(rows, their indices)` for one epoch: a stream's own batches in order, or an
        array's rows in batches of `refine_batch_size`, shuffled or not."""
        if isinstance(x, tf.data.Dataset):
            start = 0
            for rows in x:
                yield rows, np.arange(start, start + len(rows))
                start += len(rows)
            return
        order = rng.permutation(len(x)) if shuffle else np.arange(len(x))
        for start in range(0, len(order), self.refine_batch_size):
            index = order[start:start + self.refine_batch_size]
            yield np.asarray(x[index]), index

    def with_n_clusters(self, n_clusters):
        clone = super().with_n_clusters(n_clusters)
        clone._set_refined(False)
        return clone

    def get_config(self):
        config = super().get_config()
        config.update({"refine": self.refine, "refine_epochs": self.refine_epochs,
                       "refine_learning_rate": self.refine_learning_rate,
                       "refine_batch_size": self.refine_batch_size, "refined": self.refined})
        return config


def fit_auto(x, n_clusters=10, random_state=0, pretrain_epochs=None, batch_size=256,
             verbose="auto", **options):
    """Pretrains and fits the recommended method on `x` in one call.

    Args:
        x: the data, `(n_samples, ...)` raw rows or images, or a `tf.data.Dataset`.
        n_clusters: number of clusters K.
        random_state: int seed, or None.
        pretrain_epochs: autoencoder epochs; None takes the recipe's.
        batch_size: samples per step.
        verbose: as in `keras.Model.fit`.
        **options: other `AutoClustering` arguments.

    Returns:
        The fitted `AutoClustering`; its `labels_` are the clusters of `x`.

    Example:

    ```python
    model = fit_auto(x, n_clusters=10)
    model.labels_, model.predict_proba(x_new)
    ```
    """
    model = AutoClustering(n_clusters=n_clusters, random_state=random_state, **options)
    model.pretrain(x, epochs=pretrain_epochs, batch_size=batch_size, verbose=verbose)
    model.fit(x, batch_size=batch_size, verbose=verbose)
    return model
