import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture

from keras_deepclust.clusterers import fit_restarts, mean_pairwise_ari, sample_rows
from keras_deepclust.report import stability_sentence


def test_mean_pairwise_ari_by_hand():
    same, relabelled, crossed = [0, 0, 1, 1], [1, 1, 0, 0], [0, 1, 0, 1]
    # ARI(same, crossed): pairs together in both 0, expected 2 * 2 / 6, maximum 2, so
    # (0 - 2/3) / (2 - 2/3) = -0.5; the three pairs average (1 - 0.5 - 0.5) / 3 = 0.
    assert mean_pairwise_ari([same, relabelled]) == pytest.approx(1.0)
    assert mean_pairwise_ari([same, crossed]) == pytest.approx(-0.5)
    assert mean_pairwise_ari([same, relabelled, crossed]) == pytest.approx(0.0)
    assert mean_pairwise_ari([same]) is None


@pytest.mark.parametrize("kind", ["gmm", "kmeans"])
def test_restarts_keep_the_best_start_and_say_how_much_they_agree(kind):
    # Uniform noise has no clusters: the starts end in different local optima.
    points = np.random.default_rng(0).random((300, 2))
    best, agreement = fit_restarts(kind, 6, points, n_init=5, random_state=3)
    seeds = np.random.default_rng(3).integers(0, 2**31 - 1, 5)
    singles = [(KMeans(6, n_init=1, random_state=int(s)) if kind == "kmeans" else
                GaussianMixture(6, n_init=1, random_state=int(s))).fit(points) for s in seeds]
    if kind == "kmeans":
        assert best.inertia_ == pytest.approx(min(s.inertia_ for s in singles))
    else:
        assert best.lower_bound_ == pytest.approx(max(s.lower_bound_ for s in singles))
    partitions = [s.predict(points) for s in singles]
    assert agreement == pytest.approx(mean_pairwise_ari(partitions))
    assert agreement < 0.95  # the starts did disagree, so the check above means something


def test_restarts_on_separated_clusters_agree():
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.normal(c, 0.1, (50, 2)) for c in ((0, 0), (5, 0), (0, 5))])
    best, agreement = fit_restarts("gmm", 3, points, n_init=4, random_state=0)
    assert agreement == pytest.approx(1.0)
    assert np.bincount(best.predict(points)).tolist() == [50, 50, 50]
    assert fit_restarts("gmm", 3, points, n_init=1, random_state=0)[1] is None


def test_sample_rows_keeps_order_and_bound():
    points = np.arange(20).reshape(10, 2)
    assert sample_rows(points, 10) is points
    sample = sample_rows(points, 4, random_state=0)
    assert sample.shape == (4, 2) and np.all(np.diff(sample[:, 0]) > 0)
    np.testing.assert_array_equal(sample, sample_rows(points, 4, random_state=0))


@pytest.mark.parametrize("agreement, says", [
    (0.99, "The 10 starts of the clustering step found the same clusters (mean ARI between "
           "them 0.99)"),
    (0.9485, "found the same clusters (mean ARI between them 0.95)"),  # as printed
    (0.85, "mostly agree (mean ARI 0.85): some boundaries between clusters depend on the start"),
    (0.6, "disagree (mean ARI 0.60): which clusters are split or merged depends on the start"),
])
def test_stability_sentence(agreement, says):
    assert says in stability_sentence({"restart_agreement": agreement, "starts": 10})


@pytest.mark.parametrize("kept, says", [
    (0.97, "found the same clusters (mean ARI between them 1.00): the partition does not hang "
           "on the start. The refinement kept that partition (ARI 0.97 with it)"),
    (0.85, "The refinement moved some rows between clusters (ARI 0.85 with the partition it "
           "started from)."),
    (0.53, "The refinement changed the partition it started from (ARI 0.53): the model's "
           "clusters are not the clustering step's; compare with --refine off"),
])
def test_stability_sentence_after_a_refinement(kept, says):
    stability = {"restart_agreement": 1.0, "starts": 10, "refine_agreement": kept}
    assert says in stability_sentence(stability)
    assert "refinement" not in stability_sentence({**stability, "refine_agreement": None})
