"""The figures lay out without overlapping text: no title, axis label, tick label or legend
of one panel touches another panel or its texts."""

import itertools

import numpy as np
import pytest

from keras_deepclust import plots


@pytest.fixture
def figures(monkeypatch):
    """The figures the plot functions save, drawn, instead of closed."""
    drawn = []

    def keep(fig, path):
        fig.canvas.draw()
        drawn.append(fig)
        return path

    monkeypatch.setattr(plots, "_save", keep)
    return drawn


def overlaps_between_panels(fig):
    """Pairs of visible panels whose drawn extents (plotting area, title, axis and tick
    labels, legend: matplotlib's tight bounding box) touch."""
    renderer = fig.canvas.get_renderer()
    boxes = [ax.get_tightbbox(renderer) for ax in fig.axes if ax.get_visible()]
    return [(i, j) for (i, a), (j, b) in itertools.combinations(enumerate(boxes), 2)
            if a.overlaps(b)]


def test_training_curves_have_a_panel_per_phase_and_quantity_and_none_overlap(figures):
    pretrain = {"loss": list(np.linspace(0.09, 0.006, 200))}
    clustering = {name: list(np.random.default_rng(0).normal(0, 1e5, 30)) for name in
                  ("loss", "clustering_loss", "reconstruction_loss", "delta_label",
                   "cluster_size_min", "cluster_size_max", "very_long_quantity_name_of_a_metric")}
    clustering["bic"] = [-4.2e5]  # a one-shot fit logs once
    plots.plot_training_curves({"pretrain": pretrain, "clustering": clustering}, "unused.png")
    fig, = figures
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    curves = sorted(set(clustering) - {"bic"})
    assert titles == ["loss (pretrain)", *[f"{key} (clustering)" for key in curves],
                      "logged once"]
    assert overlaps_between_panels(fig) == []
    assert fig.axes[0].lines[0].get_marker() == "None"  # 200 points: a line
    once, = fig.axes[len(titles) - 1].texts
    assert once.get_text() == "bic (clustering): -4.2e+05"


def test_the_other_multi_panel_figures_do_not_overlap(figures, tmp_path):
    images = np.random.default_rng(0).uniform(0, 1, (10, 8, 8, 1))
    plots.plot_reconstructions(images, images, "unused.png")
    sweep = {"n_clusters": [2, 3, 4, 5], "silhouette": [0.1, 0.3, 0.2, 0.15],
             "calinski_harabasz": [1e3, 3e4, 2e4, 1.5e4], "bic": [-1e5, -2e5, -1.9e5, -1.8e5]}
    plots.plot_n_clusters_criteria(sweep, "unused.png", chosen=3)
    plots.plot_feature_weights(np.random.default_rng(0).uniform(size=8 * 8 * 3), (8, 8, 3),
                               "unused.png")
    assert [overlaps_between_panels(fig) for fig in figures] == [[], [], []]


def test_one_dimensional_codes_get_a_strip_per_cluster(figures):
    codes, labels = np.array([[0.5], [0.1], [2.0], [1.5]]), np.array([0, 0, 1, 1])
    plots.plot_embedding(codes, labels, "unused.png")
    ax = figures[0].axes[0]
    np.testing.assert_allclose(ax.collections[0].get_offsets(), [[0.5, 0], [0.1, 0], [2, 1],
                                                                 [1.5, 1]])
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("code", "cluster")
