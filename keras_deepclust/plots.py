"""Figures people expect from a clustering run: training curves, a 2-D view of the
embedding coloured by cluster, reconstructions and decoded centroids.

Every function writes a PNG atomically and returns its path.
"""

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402

from keras_deepclust._io import atomic_path  # noqa: E402


def _subplots(n_rows=1, n_cols=1, **kwargs):
    """`plt.subplots` with the constrained layout, which keeps titles, tick labels and
    colour bars of neighbouring panels apart."""
    return plt.subplots(n_rows, n_cols, squeeze=False, layout="constrained", **kwargs)


def _save(fig, path):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_training_curves(histories, path):
    """One panel per logged quantity and phase (pretraining and clustering losses have
    different scales), in the order of the phases; a quantity logged once is a dot.

    Args:
        histories: `{"pretrain": history_dict, "clustering": history_dict}` (dicts of
            per-epoch lists, as `History.history`).
        path: PNG file to write.
    """
    panels = [(phase, key, values) for phase, history in histories.items()
              for key, values in sorted(history.items()) if len(values)]
    n_cols = max(1, min(4, len(panels)))
    n_rows = max(1, -(-len(panels) // n_cols))
    fig, axes = _subplots(n_rows, n_cols, figsize=(4 * n_cols, 3 * n_rows))
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (phase, key, values) in zip(axes.flat, panels):
        ax.plot(np.arange(1, len(values) + 1), values, marker="o" if len(values) < 20 else None)
        ax.set_title(f"{key} ({phase})")
        ax.set_xlabel("epoch")
    return _save(fig, path)


def plot_embedding(codes, labels, path, title="embedding (PCA)", random_state=0):
    """Scatter of the codes projected to 2-D by PCA, coloured by `labels`."""
    codes = np.asarray(codes)
    points = codes if codes.shape[1] == 2 else PCA(2, random_state=random_state).fit_transform(codes)
    fig, ax = plt.subplots(figsize=(5, 5))
    scatter = ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=4)
    ax.legend(*scatter.legend_elements(), title="cluster", fontsize="small", loc="best")
    ax.set_title(title)
    return _save(fig, path)


def _image_grid(rows, path, row_titles):
    n_rows, n_cols = len(rows), len(rows[0])
    fig, axes = _subplots(n_rows, n_cols, figsize=(n_cols, n_rows * 1.1))
    for r, (images, title) in enumerate(zip(rows, row_titles)):
        for c, image in enumerate(images):
            ax = axes[r, c]
            ax.imshow(np.squeeze(image), cmap="gray" if image.shape[-1] == 1 else None)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(title, fontsize="small")
    return _save(fig, path)


def plot_reconstructions(x, x_reconstructed, path, n=10):
    """Originals (top) above their reconstructions (bottom); images only."""
    return _image_grid([x[:n], np.clip(x_reconstructed[:n], 0, 1)], path, ["input", "output"])


def plot_decoded_centroids(model, path):
    """The decoder's image of each cluster centroid (`model.code_centroids()`), one per column."""
    images = model.decoder.predict(model.code_centroids(), verbose=0)
    return _image_grid([np.clip(images, 0, 1)], path, ["centroid"])


def plot_n_clusters_criteria(sweep, path, chosen=None):
    """Each criterion of a `model_selection.sweep_n_clusters` result against K.

    Args:
        sweep: the dict returned by `sweep_n_clusters`.
        path: PNG file to write.
        chosen: the K that was picked, marked by a vertical line (or None).
    """
    names = [name for name in sweep if name != "n_clusters"]
    fig, axes = _subplots(1, len(names), figsize=(4 * len(names), 3))
    for ax, name in zip(axes[0], names):
        ax.plot(sweep["n_clusters"], sweep[name], marker="o")
        if chosen is not None:
            ax.axvline(chosen, color="grey", linestyle="--")
        ax.set_title(name)
        ax.set_xlabel("K")
    return _save(fig, path)


def plot_feature_weights(weights, sample_shape, path):
    """The clustering weight of each input feature (DAC's Fig. 2): an image per channel
    for 2-D/3-D samples (white = heavy), a bar or line plot for flat features.

    Args:
        weights: `(n_features,)` weights, e.g. `DAC.feature_weights`.
        sample_shape: shape of one sample, e.g. `(28, 28, 1)` or `(561,)`.
        path: PNG file to write.
    """
    weights = np.asarray(weights, dtype=np.float32).reshape(sample_shape)
    if weights.ndim == 1:
        fig, ax = plt.subplots(figsize=(8, 3))
        if weights.size <= 64:
            ax.bar(np.arange(weights.size), weights)
        else:
            ax.plot(weights)
        ax.set_xlabel("feature")
        ax.set_ylabel("weight")
        ax.set_title("feature weights")
        return _save(fig, path)
    channels = weights[..., None] if weights.ndim == 2 else weights
    n = channels.shape[-1]
    fig, axes = _subplots(1, n, figsize=(3.5 * n, 3))
    for c, ax in enumerate(axes[0]):
        image = ax.imshow(channels[..., c], cmap="gray")
        fig.colorbar(image, ax=ax)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title("feature weights" if n == 1 else f"feature weights, channel {c}")
    return _save(fig, path)
