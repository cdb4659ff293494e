"""`fit`'s report.html: its pieces against hand-computed values, then the whole page as
`fit` writes it, opened in a real headless browser (Debian's chromium through
chromedriver): it renders, every image loads, and its screenshot is not blank."""

import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from keras_deepclust import cli, plots
from keras_deepclust.report import feature_profile, nearest_to_centroids, write_report

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def test_nearest_to_centroids_by_hand():
    # Cluster 0: codes 0, 1, 5 (mean 2: distances 2, 1, 3); cluster 1: 10, 12 (mean 11,
    # a tie broken by order); cluster 2 has no members.
    codes = np.array([[0.0], [10.0], [1.0], [12.0], [5.0]])
    labels = np.array([0, 1, 0, 1, 0])
    nearest = nearest_to_centroids(codes, labels, n_clusters=3, n=2)
    assert [n.tolist() for n in nearest] == [[2, 0], [1, 3], []]
    assert nearest_to_centroids(codes, labels, 3, n=8)[0].tolist() == [2, 0, 4]
    with pytest.raises(ValueError, match="5 codes but 4 labels"):
        nearest_to_centroids(codes, labels[:4], 3)


def test_feature_profile_by_hand():
    # Feature 0 is all between-cluster variance, feature 1 all within, feature 2 constant.
    x = np.array([[0.0, 1.0, 7.0], [0.0, -1.0, 7.0], [4.0, 1.0, 7.0], [4.0, -1.0, 7.0]])
    labels = np.array([0, 0, 1, 1])
    features, overall, means, ratios = feature_profile(x, labels, n_clusters=3, max_features=2)
    assert features.tolist() == [0, 1]
    np.testing.assert_allclose(overall, [2.0, 0.0])
    np.testing.assert_allclose(means[:2], [[0.0, 0.0], [4.0, 0.0]])
    assert np.isnan(means[2]).all()  # the empty cluster
    np.testing.assert_allclose(ratios, [1.0, 0.0])
    # A feature's units do not change its rank.
    features, *_ = feature_profile(x * [1.0, 1e6, 1.0], labels, 3, max_features=1)
    assert features.tolist() == [0]


def _report(**changes):
    report = {"method": "dec", "dataset": "rows.csv", "n_samples": 6, "n_clusters": 3,
              "iterative": True,
              "seed": 0, "pretrain_epochs": 2, "clustering_epochs": 3,
              "seconds": {"pretrain": 1.0, "clustering": 2.0}, "cluster_sizes": [3, 3, 0],
              "empty_clusters": [2], "scaling": {"scaling": "standard"}, "batch_size": 256,
              "internal_scores": {"silhouette": 0.61234, "calinski_harabasz": 123.456,
                                  "n_rows": 6},
              "history": {"pretrain": {"loss": [2.0, 1.0]}, "clustering": {"loss": [3, 2, 1]}}}
    return dict(report, **changes)


def _write(out, report, x, labels, codes):
    out.mkdir(parents=True, exist_ok=True)
    figures = [plots.plot_training_curves(report["history"], out / "training_curves.png"),
               plots.plot_embedding(codes, labels, out / "embedding.png")]
    (out / "reconstructions.png").write_bytes(b"an earlier run's")  # not shown
    return write_report(out, report, x, labels, codes, figures)


def test_a_table_run_gets_its_feature_means_an_empty_cluster_and_no_scores(tmp_path):
    x = np.array([[1.0, 50.0], [2.0, 50.0], [3.0, 50.0], [10.0, 50.0], [20.0, 50.0],
                  [30.0, 50.0]])
    labels = np.array([0, 0, 0, 1, 1, 1])
    page = _write(tmp_path, _report(), x, labels, codes=x).read_text()
    assert re.findall(r"<h2>(.*?)</h2>", page) == [
        "Scores", "Cluster sizes", "Training curves", "Embedding", "Gallery", "Run"]
    assert "no labels, so there are no scores against them" in page
    assert "<tr><td>on the codes</td><td>0.612</td><td>123.5</td></tr>" in page
    assert "(6 rows)" in page
    assert '<tr class="empty"><td>2</td><td>0</td><td>0.0%</td>' in page
    # Feature 0: cluster means 2 and 20, mean 11; variance 688/6, of which 81 between the
    # clusters (0.71). Feature 1 is constant.
    assert "<tr><td>feature 0</td><td>0.71</td><td>11</td><td>2</td><td>20</td><td>-</td>" in page
    assert "<tr><td>feature 1</td><td>0.00</td><td>50</td><td>50</td><td>50</td><td>-</td>" in page
    assert "<td>1, 0, 2</td><td>4, 3, 5</td><td>(empty)</td>" in page
    assert "clustering 3 epochs in 2.0 s" in page
    assert not (tmp_path / "cluster_gallery.png").exists()


def test_scores_sit_beside_the_baselines(tmp_path):
    scores = {"acc": 0.9, "nmi": 0.8, "ari": 0.7, "v_measure": 0.8}
    baseline = {"acc": 0.5, "nmi": 0.4, "ari": 0.3, "v_measure": 0.4}
    report = _report(scores=scores, kmeans_on_inputs=baseline, umap_gmm_on_inputs=scores,
                     method="n2d", iterative=False, dataset="<digits>",
                     cluster_sizes=[2, 2, 2],
                     empty_clusters=[])
    x = np.arange(12, dtype=float).reshape(6, 2)
    page = _write(tmp_path, report, x, np.array([0, 0, 1, 1, 2, 2]), x).read_text()
    assert ('<tr class="method"><td>n2d</td><td>0.900</td><td>0.800</td><td>0.700</td>'
            "<td>0.800</td></tr>") in page
    assert "<tr><td>k-means on the inputs</td><td>0.500</td>" in page
    assert "<tr><td>UMAP + GMM on the inputs</td><td>0.900</td>" in page
    assert "<title>n2d on &lt;digits&gt; - keras-deepclust</title>" in page  # escaped
    assert "clustering in 2.0 s" in page  # n2d fits once: no epochs to count


@pytest.fixture(scope="module")
def browser():
    """A headless chromium driven through chromedriver, for the module."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.skip("needs Debian's chromium: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--window-size=1280,1800"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


def _open_alone(browser, report, tmp_path):
    """Opens a copy of `report` in a folder of its own, so that the page can only show
    what it holds itself; returns what the page's images did."""
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(report, alone / "report.html")
    browser.get((alone / "report.html").as_uri())
    return browser.execute_script(
        "return Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete, "
        "width: i.naturalWidth, shown: i.getBoundingClientRect().width}))")


def _loaded(images):
    return [image["alt"] for image in images
            if image["complete"] and image["width"] > 0 and image["shown"] > 0]


def _not_blank(png):
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float32)
    return float(np.mean(pixels < 200)), len(np.unique(pixels))


def test_the_image_check_sees_a_broken_image(browser, tmp_path):
    page = tmp_path / "broken.html"
    page.write_text('<img alt="missing" src="figure.png"><img alt="bad" '
                    'src="data:image/png;base64,AAAA">')
    assert _loaded(_open_alone(browser, page, tmp_path)) == []


@pytest.mark.parametrize("method", ["dcec", "dec"])
def test_fits_report_renders_in_a_headless_browser(browser, tmp_path, tiny_images, method):
    x, y = tiny_images
    if method == "dcec":
        data = tmp_path / "images.npz"
        np.savez(data, x=(255 * x).astype(np.uint8), y=y)
    else:
        data = tmp_path / "rows.csv"
        np.savetxt(data, np.column_stack([x.reshape(60, -1)[:, :10] * 100, y]), delimiter=",",
                   header=",".join([f"f{i}" for i in range(10)] + ["label"]), comments="")
    out = tmp_path / "run"
    assert cli.main(["fit", method, "--dataset", str(data), "--quick", "--pretrain-epochs", "2",
                     "--epochs", "2", "--out", str(out)]) == 0
    report = json.loads((out / "metrics.json").read_text())

    images = _open_alone(browser, out / "report.html", tmp_path)
    figures = ["training_curves", "embedding"] + (
        ["cluster_gallery", "reconstructions", "decoded_centroids"] if method == "dcec" else [])
    assert [image["alt"] for image in images] == figures
    assert _loaded(images) == figures
    headings = browser.execute_script(
        "return Array.from(document.querySelectorAll('h2')).map(h => h.textContent)")
    assert headings[:5] == ["Scores", "Cluster sizes", "Training curves", "Embedding", "Gallery"]
    shown_scores = browser.execute_script(
        "return document.querySelector('tr.method').innerText")
    assert f"{report['scores']['acc']:.3f}" in shown_scores
    if method == "dec":
        assert browser.execute_script(
            "return document.querySelectorAll('.wide tr').length") == 1 + 10 + 1

    dark_share, levels = _not_blank(browser.get_screenshot_as_png())
    assert dark_share > 0.02 and levels > 50, (dark_share, levels)
