"""IMSAT: an encoder and a softmax head trained to maximise the mutual information
between inputs and clusters, made invariant to small perturbations (Hu, Miyato,
Tokui, Matsumoto and Sugiyama, Learning Discrete Representations via Information
Maximizing Self-Augmented Training, ICML 2017). No decoder and no pretraining:

    L = R_SAT + lambda * (H(Y|X) - mu * H(Y))

where H(Y) is the entropy of the batch's mean assignment (large when the clusters are
balanced), H(Y|X) the mean entropy of each row's assignment (small when each row is
sure of its cluster), and R_SAT = KL(p(y|x) || p(y|T(x))) the change of a row's
assignment under a perturbation T. By default T adds r_adv, the perturbation of norm
eps_i that changes the assignment most (virtual adversarial training, one power
iteration; IMSAT (VAT)); as in the paper, eps_i is a fixed fraction of the distance from
row i to its 10th nearest neighbour, so that the perturbation stays inside the row's
neighbourhood. With an `augmentation`, T is that augmentation (IMSAT (affine)).
"""

import keras
import numpy as np
import tensorflow as tf
from sklearn.neighbors import NearestNeighbors

from keras_deepclust import losses
from keras_deepclust._validation import check_positive_int
from keras_deepclust.layers import NormalizedSoftmax
from keras_deepclust.models.base import register_method
from keras_deepclust.models.encoder import EncoderClusteringModel
from keras_deepclust.models.trainer import IterativeClusteringModel

# Rows whose neighbours set the radii: a sample keeps the k-NN search bounded.
_RADIUS_SAMPLE = 20_000


@register_method("imsat")
@keras.saving.register_keras_serializable(package="keras_deepclust")
class IMSAT(EncoderClusteringModel, IterativeClusteringModel):
    """Information-maximising self-augmented training (IMSAT), encoder only.

    `fit(x)` trains the encoder (`network`, "conv" for images) and its `head` (batch
    normalisation of the code, then a softmax) from their random initialisation; there
    is nothing to pretrain. Each epoch leaves out its last, partial batch, whose few rows
    would make H(Y) noise.

    Args:
        n_clusters: number of clusters K (>= 2).
        network: the encoder, as in `EncoderClusteringModel` ("auto": conv for
            images, dense for tables).
        mutual_information_weight: lambda, the weight of the information term
            against R_SAT (paper: 0.1).
        marginal_entropy_weight: mu, the weight of H(Y) within it (paper: 4); larger
            values push harder toward clusters of equal size.
        radius_fraction: eps_i as a fraction of the distance from row i to its
            `radius_neighbors`-th nearest neighbour (paper: 0.25).
        radius_neighbors: which neighbour sets the radius (paper: 10).
        xi: the length of the probe of the power iteration (paper's code: 10).
        learning_rate: Adam's learning rate (paper: 0.002).
        augmentation: None (the perturbation is VAT's), or an image augmentation
            layer (or "auto", DEC-DA's shifts and rotations) as the perturbation T.
        **kwargs: `EncoderClusteringModel`'s (`embedding_dim`, `hidden_units`,
            `filters`, `activation`, `scaling`, `random_state`, ...).

    Example:

    ```python
    model = keras_deepclust.models.IMSAT(n_clusters=10, random_state=0)
    model.fit(x, epochs=50)
    labels = model.predict_labels(x)
    ```
    """

    PAPER = ("Hu, Miyato, Tokui, Matsumoto and Sugiyama, Learning Discrete Representations "
             "via Information Maximizing Self-Augmented Training, ICML 2017")
    EPOCHS = 50
    # H(Y) is the entropy of the batch's mean assignment: a partial batch of a few rows
    # would give it (and the batch normalisation) a few rows' noise.
    FULL_BATCHES = True

    def __init__(self, n_clusters=10, network="auto", mutual_information_weight=0.1,
                 marginal_entropy_weight=4.0, radius_fraction=0.25, radius_neighbors=10,
                 xi=10.0, learning_rate=0.002, **kwargs):
        super().__init__(n_clusters=n_clusters, network=network, **kwargs)
        for name, value in (("mutual_information_weight", mutual_information_weight),
                            ("marginal_entropy_weight", marginal_entropy_weight),
                            ("radius_fraction", radius_fraction), ("xi", xi),
                            ("learning_rate", learning_rate)):
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value!r}.")
        self.mutual_information_weight = float(mutual_information_weight)
        self.marginal_entropy_weight = float(marginal_entropy_weight)
        self.radius_fraction = float(radius_fraction)
        self.radius_neighbors = check_positive_int(radius_neighbors, "radius_neighbors")
        self.xi = float(xi)
        self.learning_rate = float(learning_rate)
        self._add_trackers("loss", "sat_loss", "conditional_entropy", "marginal_entropy")
        self._build_if_shape_known()

    def _build_head(self):
        self.softmax_head = NormalizedSoftmax(self.n_clusters, seed=self.random_state,
                                              name="head")
        self.softmax_head.build((None, self.embedding_dim))

    def call(self, inputs, training=None):
        return self.softmax_head(self.encoder(inputs, training=training), training=training)

    def soft_assignment_head(self):
        return self.softmax_head

    # ------------------------------------------------------- fit skeleton hooks
    def _fit_optimizer(self, x, batch_size):
        return keras.optimizers.Adam(self.learning_rate)

    def _initialize_for_fit(self, x, batch_size, verbose, shuffle):
        self._radii = (np.zeros(len(x), np.float32) if self.augmentation is not None
                       else self.perturbation_radii(x))

    def _epoch_arrays(self, x):
        return (x, self._radii)

    def perturbation_radii(self, x):
        """eps_i of every row of the prepared `x`: `radius_fraction` times the distance
        to its `radius_neighbors`-th nearest neighbour among (a sample of) the rows,
        `(n_samples,)` float32."""
        flat = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
        if len(flat) <= self.radius_neighbors:
            raise ValueError(f"{type(self).__name__} needs more than radius_neighbors="
                             f"{self.radius_neighbors} rows, got {len(flat)}.")
        rng = np.random.default_rng(self.random_state)
        reference = flat if len(flat) <= _RADIUS_SAMPLE else flat[
            rng.choice(len(flat), _RADIUS_SAMPLE, replace=False)]
        # One more neighbour: a row of the reference set is its own nearest.
        search = NearestNeighbors(n_neighbors=self.radius_neighbors + 1).fit(reference)
        distances, _ = search.kneighbors(flat)
        return (self.radius_fraction * distances[:, -1]).astype(np.float32)

    # ------------------------------------------------------------ train steps
    def _adversarial_perturbation(self, x, p, radii):
        """r_adv: the direction that changes p most (one power iteration from a random
        probe of length `xi`), scaled to each row's radius."""
        probe = _unit_rows(tf.random.normal(tf.shape(x))) * self.xi
        with tf.GradientTape() as tape:
            tape.watch(probe)
            divergence = tf.reduce_sum(losses.kl_divergence(p, self(x + probe, training=True)))
        direction = tf.stop_gradient(tape.gradient(divergence, probe))
        shape = [-1] + [1] * (len(x.shape) - 1)
        return _unit_rows(direction) * tf.reshape(radii, shape)

    def _compute_losses(self, x, radii, training):
        p = self(x, training=training)
        conditional = tf.reduce_mean(losses.entropy(p))
        marginal = losses.entropy(tf.reduce_mean(p, axis=0, keepdims=True))[0]
        fixed = tf.stop_gradient(p)
        perturbed = (x + self._adversarial_perturbation(x, fixed, radii)
                     if self.augmentation is None else self.augmentation(x, training=True))
        sat = tf.reduce_mean(losses.kl_divergence(fixed, self(perturbed, training=training)))
        loss = sat + self.mutual_information_weight * (
            conditional - self.marginal_entropy_weight * marginal)
        return {"loss": loss, "sat_loss": sat, "conditional_entropy": conditional,
                "marginal_entropy": marginal}

    def train_step(self, data):
        x, radii = data
        variables = self.encoder.trainable_variables + self.softmax_head.trainable_variables
        with tf.GradientTape() as tape:
            values = self._compute_losses(x, radii, training=True)
        self._descend(tape, values["loss"], variables)
        return self._track(**values)

    def test_step(self, data):
        x = keras.utils.unpack_x_y_sample_weight(data)[0]
        radii = tf.fill(tf.shape(x)[:1], tf.reduce_mean(self._radii))
        return self._track(**self._compute_losses(x, radii, training=False))

    def get_config(self):
        config = super().get_config()
        config.update({
            "mutual_information_weight": self.mutual_information_weight,
            "marginal_entropy_weight": self.marginal_entropy_weight,
            "radius_fraction": self.radius_fraction,
            "radius_neighbors": self.radius_neighbors,
            "xi": self.xi,
            "learning_rate": self.learning_rate,
        })
        return config


def _unit_rows(tensor):
    """Each row of `tensor` divided by its L2 norm (over all its other axes)."""
    axes = list(range(1, len(tensor.shape)))
    return tensor / (tf.sqrt(tf.reduce_sum(tf.square(tensor), axis=axes, keepdims=True)) + 1e-12)
