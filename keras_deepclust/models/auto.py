"""The package's recommended recipe, method `auto`: N2D on the codes of an autoencoder
chosen for the data's kind.

Images get N2D's manifold clustering on the codes of a convolutional autoencoder
pretrained on augmented images (DEC-DA's shifts and rotations); tables get it on a
dense autoencoder's codes. The settings are the same on every data set; the evidence
that chose them, over data sets and seeds, is in `docs/auto.md`.
"""

from keras_deepclust.models.base import method_variant
from keras_deepclust.models.n2d import N2D

AutoClustering = method_variant(
    N2D, "AutoClustering", "auto",
    "The recommended recipe: N2D (UMAP + Gaussian mixture on the codes) with a conv "
    "autoencoder pretrained on augmented images for images, a dense one for tables.",
    paper="N2D (McConville et al., ICPR 2020) on codes pretrained as DEC-DA's "
          "(Guo, Zhu, Liu and Yin, Deep Embedded Clustering with Data Augmentation, ACML 2018)",
    network="auto", augmentation="auto",
)


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
        **options: other `AutoClustering` (i.e. `N2D`) arguments.

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
