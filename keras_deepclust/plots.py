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


def _save(fig, path):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_training_curves(histories, path):
    """One panel per logged quantity, phases side by side.

    Args:
        histories: `{"pretrain": history_dict, "clustering": history_dict}` (dicts of
            per-epoch lists, as `History.history`).
        path: PNG file to write.
    """
    keys = sorted({k for h in histories.values() for k in h})
    n_cols = min(4, len(keys))
    n_rows = -(-len(keys) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4 * n_cols, 3 * n_rows), squeeze=False)
    for ax in axes.flat[len(keys):]:
        ax.set_visible(False)
    for ax, key in zip(axes.flat, keys):
        for phase, history in histories.items():
            if key in history:
                ax.plot(np.arange(1, len(history[key]) + 1), history[key], label=phase)
        ax.set_title(key)
        ax.set_xlabel("epoch")
        ax.legend()
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
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(n_cols, n_rows * 1.1), squeeze=False)
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
    """The decoder's image of each cluster centre, one per column."""
    centroids = model.clustering.centroids.numpy()
    images = model.decoder.predict(centroids, verbose=0)
    return _image_grid([np.clip(images, 0, 1)], path, ["centroid"])
