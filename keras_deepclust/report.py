"""The run's report: one self-contained HTML page (figures inlined as data URIs, no
script, nothing fetched) with the scores beside the baselines, the cluster sizes, the
training curves, the embedding and a gallery of each cluster's most typical samples.

`keras-deepclust fit` writes it as `report.html` beside its PNGs.
"""

import base64
import html
from pathlib import Path

import numpy as np

from keras_deepclust._io import atomic_path

GALLERY_SIZE = 8
MAX_PROFILE_FEATURES = 12
NEAREST_ROWS_LISTED = 5

# The scores of metrics.json and the rows they get in the report, in order.
SCORED_ROWS = (("scores", None), ("kmeans_on_inputs", "k-means on the inputs"),
               ("umap_gmm_on_inputs", "UMAP + GMM on the inputs"))
SCORE_COLUMNS = (("acc", "ACC"), ("nmi", "NMI"), ("ari", "ARI"), ("v_measure", "v-measure"))

# Figures `fit` may write beside the report, in the report's order: (file, title, caption).
# The first two are always there (the gallery follows them); the rest only for some
# methods or data.
FIGURES = (
    ("training_curves.png", "Training curves",
     "Each logged quantity per epoch, one panel per phase (pretraining, clustering)."),
    ("embedding.png", "Embedding",
     "The codes the assignment head reads, coloured by cluster (projected to 2-D by PCA "
     "when they have more dimensions)."),
    ("reconstructions.png", "Reconstructions", "Inputs (top) and the autoencoder's output."),
    ("decoded_centroids.png", "Decoded centroids",
     "The decoder's image of each cluster's centroid in the codes' space (for a manifold "
     "head, the mean code of the cluster's rows)."),
    ("feature_weights.png", "Feature weights", "The clustering weight of each input feature."),
    ("n_clusters.png", "Choosing K", "Each criterion of the sweep over K; the dashed line is "
                                     "the K chosen."),
)
GALLERY_FIGURE = "cluster_gallery.png"

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 1.8em;
     border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.method td { font-weight: bold; } tr.empty td { color: #b00; }
.bar { display: inline-block; height: 0.8em; background: #4c78a8; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
.caption, .note { color: #666; font-size: 0.9em; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dt { color: #666; } dd { margin: 0; }
.wide { overflow-x: auto; } tr.nearest td { font-size: 0.85em; color: #444; }
"""


def nearest_to_centroids(codes, labels, n_clusters, n=GALLERY_SIZE):
    """Per cluster, the indices of its `n` members nearest the mean of its members' codes
    (Euclidean), nearest first; an empty cluster gets an empty array.

    The mean of the members is used, not a method's own centroids, so that every method
    (k-means, mixture, Student-t or gated heads) is shown the same way.
    """
    codes = np.asarray(codes, dtype=np.float64).reshape(len(codes), -1)
    labels = np.asarray(labels)
    if len(codes) != len(labels):
        raise ValueError(f"{len(codes)} codes but {len(labels)} labels.")
    nearest = []
    for k in range(n_clusters):
        members = np.flatnonzero(labels == k)
        distances = np.linalg.norm(codes[members] - codes[members].mean(axis=0), axis=1) \
            if len(members) else np.empty(0)
        nearest.append(members[np.argsort(distances, kind="stable")[:n]])
    return nearest


def feature_profile(x, labels, n_clusters, max_features=MAX_PROFILE_FEATURES):
    """The per-cluster means of the features that tell the clusters apart most.

    Features are ranked by their correlation ratio (the share of a feature's variance
    that lies between the cluster means), which does not depend on the feature's units.

    Returns:
        `(features, overall, means, ratios)`: the chosen feature indices, most telling
        first; their means over all rows; a `(n_clusters, n_chosen)` array of cluster
        means (NaN for an empty cluster); and their correlation ratios.
    """
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    labels = np.asarray(labels)
    sizes = np.bincount(labels, minlength=n_clusters)
    overall = x.mean(axis=0)
    means = np.full((n_clusters, x.shape[1]), np.nan)
    for k in np.flatnonzero(sizes):
        means[k] = x[labels == k].mean(axis=0)
    between = (sizes[:, None] * np.nan_to_num(means - overall) ** 2).sum(axis=0) / len(x)
    variance = x.var(axis=0)
    ratios = np.divide(between, variance, out=np.zeros_like(between), where=variance > 0)
    features = np.argsort(-ratios, kind="stable")[:max_features]
    return features, overall[features], means[:, features], ratios[features]


def write_report(out, report, x, labels, codes, figures):
    """Writes `out/report.html` (and, for images, `out/cluster_gallery.png`).

    Args:
        out: the run's folder.
        report: the run's `metrics.json` content.
        x: samples as the model took them (raw: before its input scaling), the rows of
            `labels`, or their first rows when the data was streamed.
        labels: the cluster of each row of `x`.
        codes: the model's embedding of `x` (`model.embed(x)`).
        figures: the PNGs of this run to show (among `FIGURES`; a file an earlier run left
            in `out` is not shown), the training curves and the embedding first.

    Returns:
        The report's path.
    """
    from keras_deepclust import plots

    out = Path(out)
    x, labels = np.asarray(x), np.asarray(labels)
    n_clusters = report["n_clusters"]
    nearest = nearest_to_centroids(codes, labels, n_clusters)
    if x.ndim == 4:
        plots.plot_cluster_gallery(x, nearest, out / GALLERY_FIGURE)
        gallery = _figure_html(out / GALLERY_FIGURE, f"The {GALLERY_SIZE} members of each "
                               "cluster nearest the mean of its codes, nearest first.")
    else:
        gallery = _profile_html(x, labels, n_clusters, nearest)
    if len(x) < report["n_samples"]:
        gallery += (f'<p class="note">From the first {len(x)} of {report["n_samples"]} rows '
                    "(the data was streamed).</p>")
    figures = {Path(path).name: Path(path) for path in figures}
    shown = [(title, _figure_html(figures[name], caption)) for name, title, caption in FIGURES
             if name in figures]
    sections = [("Scores", _scores_html(report)),
                ("Cluster sizes", _sizes_html(report["cluster_sizes"])),
                *shown[:2], ("Gallery", gallery), *shown[2:], ("Run", _settings_html(report))]
    title = f"{report['method']} on {report['dataset']}"
    body = "".join(f"<h2>{html.escape(name)}</h2>\n{content}\n" for name, content in sections)
    page = (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html.escape(title)} - keras-deepclust</title>\n<style>{STYLE}</style>\n"
            f"</head>\n<body>\n<h1>{html.escape(title)}</h1>\n<p>{_summary(report)}</p>\n"
            f"{body}</body>\n</html>\n")
    path = out / "report.html"
    with atomic_path(path) as tmp:
        Path(tmp).write_text(page, encoding="utf-8")
    return path


def _summary(report):
    text = f"{report['n_samples']} samples, K = {report['n_clusters']}"
    seconds = report.get("seconds")
    if seconds is None:  # a model fitted outside `run` (`RunResult.from_model`)
        return html.escape(text + ".")
    clustering = f"clustering in {seconds['clustering']:.1f} s"
    if report["iterative"]:  # a one-shot fit has no epochs to count
        clustering = f"clustering {report['clustering_epochs']} epochs in " \
                     f"{seconds['clustering']:.1f} s"
    return html.escape(
        f"{text}, seed {report['seed']}; pretraining {report['pretrain_epochs']} epochs in "
        f"{seconds['pretrain']:.1f} s, {clustering}.")


def _scores_html(report):
    return (_external_scores_html(report) + _internal_scores_html(report.get("internal_scores"))
            + _stability_html(report.get("stability")))


# Mean ARI between the starts' partitions above which they count as one answer, and
# below which they are different answers (a split or merged cluster moves ARI by ~0.1).
STABLE_AGREEMENT, UNSTABLE_AGREEMENT = 0.95, 0.8


def stability_sentence(stability):
    """Plain sentences on how much the clusterer's starts agreed and, after a refinement,
    how much of the partition it kept, for a user without labels: `stability` is
    `metrics.json`'s `{"restart_agreement", "starts"[, "refine_agreement"]}`."""
    # Compared as printed, so that the words and the number agree.
    agreement, starts = round(stability["restart_agreement"], 2), stability["starts"]
    measured = f"The {starts} starts of the clustering step"
    if agreement >= STABLE_AGREEMENT:
        sentence = (f"{measured} found the same clusters (mean ARI between them "
                    f"{agreement:.2f}): the partition does not hang on the start.")
    elif agreement >= UNSTABLE_AGREEMENT:
        sentence = (f"{measured} mostly agree (mean ARI {agreement:.2f}): some boundaries "
                    "between clusters depend on the start; the most likely start was kept.")
    else:
        sentence = (f"{measured} disagree (mean ARI {agreement:.2f}): which clusters are split "
                    "or merged depends on the start. The most likely start was kept; compare "
                    "runs with other seeds before relying on the clusters.")
    if stability.get("refine_agreement") is None:
        return sentence
    kept = round(stability["refine_agreement"], 2)
    if kept >= STABLE_AGREEMENT:
        return sentence + (f" The refinement kept that partition (ARI {kept:.2f} with it), "
                           "moving only rows near the boundaries.")
    if kept >= UNSTABLE_AGREEMENT:
        return sentence + (f" The refinement moved some rows between clusters (ARI {kept:.2f} "
                           "with the partition it started from).")
    return sentence + (f" The refinement changed the partition it started from (ARI {kept:.2f}): "
                       "the model's clusters are not the clustering step's; compare with "
                       "--refine off before relying on them.")


def _stability_html(stability):
    if stability is None:
        return ""
    return f'<p class="note">{html.escape(stability_sentence(stability))}</p>\n'


def _external_scores_html(report):
    if "scores" not in report:
        return '<p class="note">The data has no labels, so there are no scores against them.</p>'
    head = "".join(f"<th>{name}</th>" for _, name in SCORE_COLUMNS)
    rows = []
    for key, name in SCORED_ROWS:
        if key in report:
            cells = "".join(f"<td>{report[key][score]:.3f}</td>" for score, _ in SCORE_COLUMNS)
            css = ' class="method"' if name is None else ""
            rows.append(f"<tr{css}><td>{html.escape(name or report['method'])}</td>{cells}</tr>")
    return (f"<table>\n<tr><th></th>{head}</tr>\n" + "\n".join(rows) + "\n</table>\n"
            '<p class="note">Against the labels; ACC after Hungarian matching of clusters to '
            "labels. The baselines cluster the same inputs, scaled as the model scales them.</p>")


def _internal_scores_html(internal):
    if internal is None:
        return ""
    if internal["silhouette"] is None:
        return (f'<p class="note">No label-free scores: {html.escape(internal["undefined"])}.'
                "</p>\n")
    return ("<table>\n<tr><th></th><th>silhouette</th><th>Calinski-Harabasz</th></tr>\n"
            f'<tr><td>on the codes</td><td>{internal["silhouette"]:.3f}</td>'
            f'<td>{internal["calinski_harabasz"]:.4g}</td></tr>\n</table>\n'
            '<p class="note">Label-free, on the codes the assignment head reads '
            f'({internal["n_rows"]} rows): the silhouette runs from -1 to 1, and higher is '
            "better for both. Both depend on the code space, so they compare runs of one "
            "method on the same data, not methods or data sets.</p>")


def _sizes_html(sizes):
    largest, total = max(max(sizes), 1), max(sum(sizes), 1)
    rows = []
    for k, size in enumerate(sizes):
        css = ' class="empty"' if size == 0 else ""
        bar = f'<span class="bar" style="width:{12 * size / largest:.2f}em"></span>'
        rows.append(f"<tr{css}><td>{k}</td><td>{size}</td><td>{100 * size / total:.1f}%</td>"
                    f'<td style="text-align:left">{bar}</td></tr>')
    empty = [k for k, size in enumerate(sizes) if size == 0]
    note = (f'<p class="note">Empty: {", ".join(map(str, empty))}. Fewer clusters may '
            "describe the data better.</p>" if empty else "")
    return ("<table>\n<tr><th>cluster</th><th>rows</th><th>share</th><th></th></tr>\n"
            + "\n".join(rows) + f"\n</table>\n{note}")


def _profile_html(x, labels, n_clusters, nearest):
    features, overall, means, ratios = feature_profile(x, labels, n_clusters)
    n_features = x.reshape(len(x), -1).shape[1]
    head = "".join(f"<th>cluster {k}</th>" for k in range(n_clusters))
    rows = [f"<tr><td>feature {f}</td><td>{ratio:.2f}</td><td>{mean:.4g}</td>"
            + "".join("<td>-</td>" if np.isnan(v) else f"<td>{v:.4g}</td>" for v in values)
            + "</tr>" for f, ratio, mean, values in zip(features, ratios, overall, means.T)]
    listed = "".join(
        f"<td>{', '.join(str(i) for i in rows_k[:NEAREST_ROWS_LISTED]) or '(empty)'}</td>"
        for rows_k in nearest)
    rows.append(f'<tr class="nearest"><td>rows nearest the centroid</td><td></td><td></td>'
                f"{listed}</tr>")
    chosen = (f"the {len(features)} of {n_features} features" if len(features) < n_features
              else "every feature")
    return ('<div class="wide"><table>\n<tr><th></th><th>between-cluster share</th>'
            f"<th>all rows</th>{head}</tr>\n" + "\n".join(rows) + "\n</table></div>\n"
            '<p class="note">The mean of each feature over each cluster\'s rows, in the data\'s '
            f"units, for {chosen} whose means differ most between clusters: ranked by the "
            "share of their variance that lies between the cluster means. Features are "
            "numbered from 0, after any label column; rows from 0, as in labels.csv. The last "
            f"row lists the {NEAREST_ROWS_LISTED} rows of each cluster nearest the mean of its "
            "codes.</p>")


def _figure_html(path, caption):
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (f'<img src="data:image/png;base64,{data}" alt="{html.escape(Path(path).stem)}">\n'
            f'<p class="caption">{html.escape(caption)}</p>')


def _settings_html(report):
    settings = {"method": report["method"], "data": report["dataset"],
                "input scaling": report["scaling"].get("scaling"),
                **{key.replace("_", " "): report.get(key)
                   for key in ("batch_size", "noise", "augment", "init", "precision",
                               "strategy", "replicas")}}
    if "n_clusters_selection" in report:
        selection = report["n_clusters_selection"]
        settings["K chosen by"] = f"{selection['criterion']} (K = {selection['chosen']})"
    items = "".join(f"<dt>{html.escape(name)}</dt><dd>{html.escape(str(value))}</dd>"
                    for name, value in settings.items() if value is not None)
    return f"<dl>{items}</dl>"
