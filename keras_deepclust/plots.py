"""Figures people expect from a clustering run: training curves, a 2-D view of the
embedding coloured by cluster, reconstructions, decoded centroids and a gallery of
each cluster's most typical samples.

Every function writes a PNG atomically and returns its path.
"""

from pathlib import Path

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
    different scales), in the order of the phases; the quantities logged once (a one-shot
    fit's) share a last panel as text.

    Args:
        histories: `{"pretrain": history_dict, "clustering": history_dict}` (dicts of
            per-epoch lists, as `History.history`).
        path: PNG file to write.
    """
    logged = [(phase, key, values) for phase, history in histories.items()
              for key, values in sorted(history.items()) if len(values)]
    curves = [entry for entry in logged if len(entry[2]) > 1]
    once = [f"{key} ({phase}): {values[0]:.4g}" for phase, key, values in logged
            if len(values) == 1]
    n_panels = len(curves) + bool(once)
    n_cols = max(1, min(4, n_panels))
    n_rows = max(1, -(-n_panels // n_cols))
    fig, axes = _subplots(n_rows, n_cols, figsize=(4 * n_cols, 3 * n_rows))
    for ax in axes.flat[n_panels:]:
        ax.set_visible(False)
    for ax, (phase, key, values) in zip(axes.flat, curves):
        ax.plot(np.arange(1, len(values) + 1), values, marker="o" if len(values) < 20 else None)
        ax.set_title(f"{key} ({phase})")
        ax.set_xlabel("epoch")
    if once:
        ax = axes.flat[len(curves)]
        ax.axis("off")
        ax.set_title("logged once")
        ax.text(0.0, 1.0, "\n".join(once), va="top", fontsize="small", family="monospace",
                transform=ax.transAxes)
    return _save(fig, path)


def plot_embedding(codes, labels, path, title=None, random_state=0):
    """Scatter of the codes projected to 2-D by PCA, coloured by `labels` (1-D codes: a
    strip per cluster)."""
    codes = np.asarray(codes).reshape(len(codes), -1)
    if codes.shape[1] == 1:
        points, shown = np.column_stack([codes[:, 0], labels]), "embedding"
    elif codes.shape[1] == 2:
        points, shown = codes, "embedding"
    else:
        points = PCA(2, random_state=random_state).fit_transform(codes)
        shown = "embedding (PCA)"
    fig, ax = plt.subplots(figsize=(5, 5))
    scatter = ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=4)
    ax.legend(*scatter.legend_elements(), title="cluster", fontsize="small", loc="best")
    ax.set_title(title or shown)
    if codes.shape[1] == 1:
        ax.set_xlabel("code")
        ax.set_ylabel("cluster")
    return _save(fig, path)


def _shown(image):
    """An image as imshow takes it: grey for one channel, colour for three, else the
    first channel in grey."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] != 3:
        image = image[..., 0]
    return image


def _image_grid(rows, path, row_titles, vmin=None, vmax=None):
    """A grid with a row of images per entry of `rows` (rows may differ in length; an
    empty row says so)."""
    n_rows, n_cols = len(rows), max(1, max(len(images) for images in rows))
    fig, axes = _subplots(n_rows, n_cols, figsize=(n_cols, n_rows * 1.1))
    for r, (images, title) in enumerate(zip(rows, row_titles)):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(images):
                image = _shown(images[c])
                ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=vmin, vmax=vmax)
            elif c == 0:
                ax.text(0.5, 0.5, "empty", ha="center", va="center", fontsize="small")
            else:
                ax.set_visible(False)
        axes[r, 0].set_ylabel(title, fontsize="small")
    return _save(fig, path)


def plot_reconstructions(x, x_reconstructed, path, n=10):
    """Originals (top) above their reconstructions (bottom); images only."""
    return _image_grid([x[:n], np.clip(x_reconstructed[:n], 0, 1)], path, ["input", "output"])


def plot_decoded_centroids(decoder, prototype_codes, path):
    """The decoder's image of each cluster's prototype code (`model.prototype_codes`), one
    per column."""
    images = decoder.predict(prototype_codes, verbose=0)
    return _image_grid([np.clip(images, 0, 1)], path, ["centroid"])


def plot_cluster_gallery(images, nearest, path):
    """A row per cluster of its samples nearest its centroid (`report.nearest_to_centroids`),
    nearest first, all scaled to [0, 1] together so that brightness compares across rows.

    Args:
        images: `(n, height, width, channels)` samples as the model took them.
        nearest: per cluster, the indices into `images` to show.
        path: PNG file to write.
    """
    from keras_deepclust.datasets import scale_to_unit

    shown = np.concatenate([np.asarray(i, dtype=np.int64) for i in nearest])
    scaled = scale_to_unit(images[shown])
    rows = np.split(scaled, np.cumsum([len(i) for i in nearest])[:-1])
    titles = [f"cluster {k}" for k in range(len(nearest))]
    return _image_grid(rows, path, titles, vmin=0.0, vmax=1.0)


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


def plot_run(model, x, codes, labels, report, out):
    """The figures of a run, written into the folder `out`: the training curves (when
    `report` has a history), the embedding `codes` coloured by `labels`, what the model
    says it can draw (`model.DRAWS`: reconstructions and decoded centroids of images,
    feature weights) and the criteria of a sweep over K. Returns their paths."""
    out = Path(out)
    draws = set(model.DRAWS)
    figures = []
    if report.get("history"):
        figures.append(plot_training_curves(report["history"], out / "training_curves.png"))
    figures.append(plot_embedding(codes, labels, out / "embedding.png"))
    if x.ndim == 4 and "reconstructions" in draws:
        figures.append(plot_reconstructions(x[:10], model.reconstruct(x[:10]),
                                            out / "reconstructions.png"))
    if x.ndim == 4 and "decoded_centroids" in draws:
        prototypes = model.prototype_codes(x, labels)
        if prototypes is not None:
            figures.append(plot_decoded_centroids(model.decoder, prototypes,
                                                  out / "decoded_centroids.png"))
    if "feature_weights" in draws:
        figures.append(plot_feature_weights(model.feature_weights, model.sample_shape,
                                            out / "feature_weights.png"))
    if "n_clusters_selection" in report:
        selection = report["n_clusters_selection"]
        figures.append(plot_n_clusters_criteria(selection["sweep"], out / "n_clusters.png",
                                                chosen=selection["chosen"]))
    return figures
