"""A clustering run as one library call: what `keras-deepclust fit` does (pretraining,
fitting, baselines and scores) and the files it writes, for a Python user too.

```python
import keras_deepclust as kdc

result = kdc.run("auto", x, y, random_state=0)
print(result.summary())
result.write("runs/auto")  # model.keras, labels.csv, metrics.json, report.html, figures
```

`RunResult.from_model(model, x, y)` gives the same report and files for a model fitted by
hand with `pretrain` and `fit`:

```python
model = kdc.DCEC(n_clusters=10, random_state=0)
model.pretrain(x, epochs=50)
history = model.fit(x)
kdc.RunResult.from_model(model, x, y, history=history).write("runs/dcec")
```
"""

import csv
import tempfile
import time
from pathlib import Path

import numpy as np

from keras_deepclust._io import atomic_path, write_json
from keras_deepclust.options import PYTHON
from keras_deepclust.report import FIGURES, GALLERY_FIGURE, stability_sentence, write_report

# The files a run writes besides its figures (`RunResult.write`).
RUN_FILES = ("model.keras", "metrics.json", "labels.csv", "report.html")


def run(method, x, y=None, n_clusters=None, *, options=None, random_state=0,
        pretrain_epochs=None, epochs=None, batch_size=256, noise=0.0, scaling="auto",
        strategy="default", precision="auto", resume=None, k_range=(2, 15), criterion=None,
        umap_baseline=False, fit_options=None, dataset=None, verbose=2,
        spelling=PYTHON):
    """Trains the registered `method` on `x` as `keras-deepclust fit` does.

    Args:
        method: a registered method name (`keras_deepclust.models.list_methods()`).
        x: the raw rows, `(n_samples, ...)`, or a `tf.data.Dataset` of batches.
        y: labels, only to score the clusters (never trained on), or None.
        n_clusters: K; None takes the number of classes in `y`; "auto" pretrains once
            and chooses K over `k_range` by `criterion` (`model_selection`).
        options: the method's constructor arguments (its `OPTIONS` and others).
        random_state: the seed of every random choice.
        pretrain_epochs: the autoencoder's epochs (None: the method's); pretraining runs
            when the method needs it or when this is given.
        epochs: the clustering epochs of an iterative method (None: its schedule).
        batch_size, noise, scaling: as `pretrain` and `fit` take them.
        strategy: a `distribute.get_strategy` name ("default", "mirrored",
            "multi-worker").
        precision: a Keras dtype policy, or "auto" (`layers.precision.resolve_policy`).
        resume: a folder that backs pretraining and the clustering fit up at every
            epoch, and from which a run killed before resumes.
        umap_baseline: also score UMAP + a Gaussian mixture on the inputs (needs `y`).
        fit_options: further `fit` arguments (e.g. `weight_labels` for DAC).
        dataset: the data's name for the report.
        verbose: Keras' verbosity of the training.
        spelling: how errors name the arguments (`options.Spelling`; the CLI's flags).

    Returns:
        A `RunResult`, whose model is the one `keras.saving.load_model` gives back from
        its `model.keras`.
    """
    import tensorflow as tf

    from keras_deepclust.layers.precision import dtype_policy, resolve_policy
    from keras_deepclust.models import get_method

    model_class = get_method(method)
    n_clusters = check_run_arguments(model_class, method, x, y, n_clusters, pretrain_epochs,
                                     epochs, noise, resume, k_range, umap_baseline,
                                     dataset or "the data", spelling)
    # Physical devices: listing logical ones would start TensorFlow's runtime before a
    # multi-worker strategy can configure its collective ops.
    policy, chosen_by = resolve_policy(precision, bool(tf.config.list_physical_devices("GPU")))
    with dtype_policy(policy):
        return _train(model_class, method, x, y, n_clusters, options or {}, random_state,
                      pretrain_epochs, epochs, batch_size, noise, scaling, strategy,
                      (policy, chosen_by), resume, k_range, criterion, umap_baseline,
                      fit_options or {}, dataset, verbose)


def _train(model_class, method, x, y, n_clusters, options, seed, pretrain_epochs, epochs,
           batch_size, noise, scaling, strategy_name, precision, resume_folder, k_range,
           criterion, umap_baseline, fit_options, dataset, verbose):
    from keras_deepclust import backup, callbacks, distribute
    from keras_deepclust._backup_files import PHASES, make_folder

    resume = pretrain_backup = None
    if resume_folder is not None:
        make_folder(resume_folder)  # removed at the end only if this makes it
        # Both kept until the outputs are written, so a kill at any point loses at most
        # the epoch under way.
        pretrain_backup, resume = (
            backup.ClusteringBackup(Path(resume_folder) / phase, delete_on_success=False)
            for phase in PHASES)
    strategy = distribute.get_strategy(strategy_name)
    distribute.check_distributed_fit(batch_size, strategy)
    streamed = not isinstance(x, np.ndarray)
    shape = tuple(x.element_spec.shape[1:]) if streamed else x.shape[1:]
    if verbose:
        print(f"{method} on {dataset}: {'a stream of' if streamed else len(x)} samples of "
              f"shape {shape}, K={n_clusters}, seed={seed}")
    start = time.perf_counter()
    selection = pretrain_history = None
    if n_clusters == "auto":
        with strategy.scope():  # the models it makes are created under the strategy
            model, pretrain_history, selection = _choose_n_clusters(
                model_class, x, y, options, seed, scaling, pretrain_epochs, batch_size, noise,
                k_range, criterion, verbose)
        n_clusters = model.n_clusters
    else:
        with strategy.scope():
            model = model_class(n_clusters=n_clusters, random_state=seed, scaling=scaling,
                                **options)
        if resume is not None and resume.exists():
            print(f"Resuming the clustering fit from the backup in {resume_folder}.")
        elif getattr(model, "NEEDS_PRETRAINING", False) or pretrain_epochs is not None:
            if pretrain_backup is not None and pretrain_backup.exists():
                print(f"Resuming pretraining from the backup in {resume_folder}.")
            pretrain_history = model.pretrain(
                x, epochs=pretrain_epochs, batch_size=batch_size, noise_stddev=noise,
                verbose=verbose, callbacks=[pretrain_backup] if pretrain_backup else None)
    pretrain_seconds = time.perf_counter() - start
    start = time.perf_counter()
    fit_arguments = dict(fit_options, batch_size=batch_size, verbose=verbose)
    if model.ITERATIVE_FIT:
        fit_callbacks = [callbacks.ClusteringMetrics(x, y)] if y is not None else []
        if resume is not None:
            fit_callbacks.append(resume)  # last: it backs up what the others updated
        fit_arguments.update(epochs=epochs, callbacks=fit_callbacks)
    history = model.fit(x, **fit_arguments)
    cluster_seconds = time.perf_counter() - start
    model = _as_loaded(model, x, precision[0], strategy)
    if pretrain_history is not None:
        pretrain_log = pretrain_history.history
    else:  # resumed after pretraining: its epochs are in their backup
        pretrain_log = pretrain_backup.saved_history() if pretrain_backup is not None else {}
    training = {
        "seed": seed,
        "pretrain_epochs": len(pretrain_log.get("loss", [])),
        "clustering_epochs": len(history.history.get("loss", [])),
        "noise": noise,
        "batch_size": batch_size,
        "strategy": strategy_name,
        "replicas": strategy.num_replicas_in_sync,
        "precision": precision[0],
        "precision_chosen_by": precision[1],
        "seconds": {"pretrain": pretrain_seconds, "clustering": cluster_seconds},
        "history": {"pretrain": pretrain_log, "clustering": history.history},
    }
    if selection is not None:
        training["n_clusters_selection"] = selection
    return RunResult.from_model(model, x, y, labels=model.labels_, history=history,
                                random_state=seed, umap_baseline=umap_baseline,
                                dataset=dataset, training=training)


class RunResult:
    """A fitted model, every row's cluster and the run's report (what `metrics.json`
    holds), with what writes and prints them.

    Attributes:
        model: the fitted model.
        labels: each row's cluster, `(n_samples,)` int32.
        report: the report, a dict of JSON values.
        sample: the rows the figures and label-free scores use (all of an array; the
            first batches of a stream).
        codes: the sample's embedding (`model.embed`).
    """

    def __init__(self, model, labels, report, sample, codes):
        self.model, self.labels, self.report = model, labels, report
        self.sample, self.codes = sample, codes

    @classmethod
    def from_model(cls, model, x, y=None, *, labels=None, history=None, random_state=0,
                   umap_baseline=False, dataset=None, training=None):
        """The report of a fitted `model` on its rows `x`: cluster sizes, label-free
        scores on the codes and, with labels `y`, ACC/NMI/ARI beside k-means (and, with
        `umap_baseline`, UMAP + GMM) on the inputs. `history`, the `History` of `fit`,
        adds its curves and the stability of the restarts; `training` holds the run's
        settings and both phases' histories (what `run` adds)."""
        import tensorflow as tf

        from keras_deepclust import metrics, model_selection
        from keras_deepclust.clusterers import make_clusterer, umap_mixture_labels
        from keras_deepclust.models import method_name

        if labels is None:
            labels = model.predict_labels(x)
        labels = np.asarray(labels)
        sizes = np.bincount(labels, minlength=model.n_clusters)
        if training is None and history is not None:
            training = {"history": {"clustering": history.history}}
        report = {"method": method_name(model) or type(model).__name__,
                  "dataset": dataset or "the data", "n_samples": len(labels),
                  "n_clusters": model.n_clusters, "iterative": model.ITERATIVE_FIT,
                  **(training or {}),
                  "cluster_sizes": sizes.tolist(),
                  "empty_clusters": np.flatnonzero(sizes == 0).tolist(),
                  "scaling": model.input_scaling.description()}
        logs = {} if history is None else history.history
        agreement = logs.get("restart_agreement", [None])[-1]
        if agreement is not None:
            report["stability"] = {"restart_agreement": agreement, "starts": model.n_init}
            kept = logs.get("refine_agreement", [None])[-1]
            if kept is not None:
                report["stability"]["refine_agreement"] = kept
        if y is not None:
            report["scores"] = metrics.clustering_scores(y, labels)
            inputs = model.preprocess(x)
            kmeans = make_clusterer("kmeans", model.n_clusters, random_state=random_state)
            report["kmeans_on_inputs"] = metrics.clustering_scores(
                y, kmeans.fit_predict(inputs.reshape(len(inputs), -1)))
            if umap_baseline:
                report["umap_gmm_on_inputs"] = metrics.clustering_scores(
                    y, umap_mixture_labels(inputs, model.n_clusters, random_state))
        # The predict passes are collective under a multi-worker strategy: every worker
        # runs them, only the chief keeps the files.
        sample = np.concatenate(list(x.take(8).as_numpy_iterator())) if isinstance(
            x, tf.data.Dataset) else np.asarray(x)  # a stream's first batches
        codes = model.embed(sample)
        report["internal_scores"] = {
            **model_selection.internal_scores(codes, labels[: len(sample)],
                                              random_state=random_state),
            "n_rows": len(sample)}
        return cls(model, labels, report, sample, codes)

    def write(self, out, files=None, overwrite=False):
        """Writes `model.keras`, `metrics.json`, `labels.csv` (with each row's file after
        its number when `files` are given), the figures the model can draw and
        `report.html` into the folder `out`, each file written whole then renamed.

        A folder that holds another run is refused unless `overwrite`; then the files of
        the previous run that this run did not write (a figure this method does not
        draw) are removed, so that the folder holds one run.

        Returns:
            The names of the files removed.
        """
        from keras_deepclust import plots

        out = Path(out)
        check_no_other_run(out, overwrite)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_path(out / "model.keras") as tmp:
            self.model.save(tmp)
        write_json(out / "metrics.json", self.report)
        with atomic_path(out / "labels.csv") as tmp, open(tmp, "w", newline="") as f:
            rows = csv.writer(f, lineterminator="\n")
            rows.writerow(["row", "cluster"] if files is None else ["row", "file", "cluster"])
            rows.writerows([i, label] if files is None else [i, files[i], label]
                           for i, label in enumerate(self.labels.tolist()))
        figures = plots.plot_run(self.model, self.sample, self.codes,
                                 self.labels[: len(self.sample)], self.report, out)
        write_report(out, self.report, self.sample, self.labels[: len(self.sample)],
                     self.codes, figures)
        written = {*RUN_FILES, *(Path(figure).name for figure in figures),
                   *([GALLERY_FIGURE] if self.sample.ndim == 4 else [])}
        stale = [name for name in run_files_in(out) if name not in written]
        for name in stale:
            (out / name).unlink()
        return stale

    def summary(self):
        """What `keras-deepclust fit` prints at the end: times, scores beside the
        baselines, label-free scores, stability and empty clusters."""
        report, lines = self.report, []
        seconds = report.get("seconds")
        if seconds is not None:
            clustering = f"clustering {seconds['clustering']:.1f} s"
            if report["iterative"]:  # a one-shot fit has no epochs to count
                clustering += f" ({report['clustering_epochs']} epochs)"
            refine_seconds = report["history"]["clustering"].get("refine_seconds")
            if refine_seconds:  # `auto`'s refinement, part of its fit
                clustering += f", of which the refinement {refine_seconds[-1]:.1f} s"
            lines.append(f"pretraining {seconds['pretrain']:.1f} s ({report['pretrain_epochs']} "
                         f"epochs), {clustering}; precision {report['precision']} "
                         f"({report['precision_chosen_by']})")
        if "scores" in report:
            lines.append(f"{'':24s}{'ACC':>8s}{'NMI':>8s}{'ARI':>8s}")
            rows = [(report["method"], report["scores"]),
                    ("k-means on inputs", report["kmeans_on_inputs"])]
            if "umap_gmm_on_inputs" in report:
                rows.append(("UMAP + GMM on inputs", report["umap_gmm_on_inputs"]))
            lines += [f"{name:24s}{scores['acc']:8.3f}{scores['nmi']:8.3f}{scores['ari']:8.3f}"
                      for name, scores in rows]
        internal = report["internal_scores"]
        if internal["silhouette"] is None:
            lines.append(f"no label-free scores: {internal['undefined']}")
        else:
            lines.append(f"on the codes: silhouette {internal['silhouette']:.3f}, "
                         f"Calinski-Harabasz {internal['calinski_harabasz']:.4g}")
        if "stability" in report:
            lines.append(stability_sentence(report["stability"]))
        if report["empty_clusters"]:
            lines.append(f"empty clusters: {report['empty_clusters']} "
                         f"(sizes {report['cluster_sizes']})")
        return "\n".join(lines)


def check_no_other_run(out, overwrite=False, spelling=PYTHON):
    """Refuses a folder `out` that holds another run's files unless `overwrite`
    (`spelling` names the two arguments in the error). Returns the files of that run."""
    previous = run_files_in(out)
    if previous and not overwrite:
        raise ValueError(f"{spelling.name('out')} {out} holds another run "
                         f"({', '.join(previous)}): pass {spelling.setting('overwrite')} to "
                         "replace it, or name another folder.")
    return previous


def run_files_in(out):
    """The files of a run (`RUN_FILES` and figures) that the folder `out` holds."""
    names = (*RUN_FILES, GALLERY_FIGURE, *(name for name, _, _ in FIGURES))
    return [name for name in names if (Path(out) / name).is_file()]


def check_run_arguments(model_class, method, x, y, n_clusters, pretrain_epochs, epochs, noise,
                        resume, k_range, umap_baseline, dataset, spelling=PYTHON):
    """Refuses, before any work, arguments `run` cannot honour for `method` on `x` (named
    as `spelling` writes them); returns the K to fit (`check_data_arguments`)."""
    name, setting = spelling.name, spelling.setting
    if not hasattr(model_class, "pretrain"):
        given = [name(argument) for argument, value in
                 (("pretrain_epochs", pretrain_epochs is not None), ("noise", noise > 0))
                 if value]
        if given:
            raise ValueError(f"{' and '.join(given)}: {method} has no autoencoder to pretrain; "
                             f"it trains from its initial weights in its fit "
                             f"({name('epochs')}).")
    if epochs is not None and not model_class.ITERATIVE_FIT:
        raise ValueError(f"{name('epochs')} is for methods whose fit trains in epochs; {method} "
                         f"fits its clusterer once (use {name('pretrain_epochs')} for its "
                         "autoencoder).")
    n_clusters = check_data_arguments(x, y, n_clusters, k_range, umap_baseline, dataset,
                                      spelling)
    if n_clusters == "auto":
        if resume is not None:
            raise ValueError(f"{name('resume')} needs a fixed K: pass "
                             f"{setting('n_clusters', 'K')} with the K the first run chose.")
        if not getattr(model_class, "NEEDS_PRETRAINING", False):
            raise ValueError(f"{setting('n_clusters', 'auto')} needs a method that starts from "
                             f"a pretrained autoencoder; {method} does not. Pass "
                             f"{setting('n_clusters', 'K')}.")
    return n_clusters


def check_data_arguments(x, y, n_clusters, k_range=(2, 15), umap_baseline=False,
                         dataset="the data", spelling=PYTHON):
    """The checks of `check_run_arguments` that need the data but not the method (no
    Keras import): labels for `umap_baseline` and for an `n_clusters` of None, and
    enough rows for K or `k_range`. Returns the K to fit (the number of classes of `y`
    when `n_clusters` is None)."""
    name, setting = spelling.name, spelling.setting
    if umap_baseline and y is None:
        raise ValueError(f"{name('umap_baseline')} scores against labels, and {dataset} has "
                         "none.")
    counted = n_clusters is None
    if counted:
        if y is None:
            raise ValueError(f"{dataset} has no labels: pass {setting('n_clusters', 'K')} or "
                             f"{setting('n_clusters', 'auto')}.")
        n_clusters = len(set(np.asarray(y).tolist()))
    if isinstance(x, np.ndarray):
        _check_clusters_fit_rows(n_clusters, len(x), k_range, counted, dataset, spelling)
    return n_clusters


def _check_clusters_fit_rows(n_clusters, n_rows, k_range, counted, dataset, spelling):
    """Refuses a K (or `k_range`) that `n_rows` rows cannot give."""
    if n_clusters == "auto":
        if k_range[1] >= n_rows:
            raise ValueError(f"{spelling.name('k_range')} MAX must be below the number of "
                             f"rows: {dataset} has {n_rows} rows, {spelling.name('k_range')} "
                             f"goes up to {k_range[1]}.")
    elif n_clusters >= n_rows:
        source = (f"the {n_clusters} classes of its labels" if counted
                  else spelling.setting("n_clusters", n_clusters))
        raise ValueError(f"{dataset} has {n_rows} rows, too few for {source}: a clustering "
                         "needs more rows than clusters.")
    elif n_clusters < 2:
        raise ValueError(f"the labels of {dataset} hold {n_clusters} class: pass "
                         f"{spelling.setting('n_clusters', 'K')} (K >= 2) to cluster it.")


def _as_loaded(model, x, precision, strategy):
    """`model` as `keras.saving.load_model` gives it back, with `labels_` of its rows.

    Trained under a mixed policy, the networks compute in 16 bits; the saved file is
    rebuilt in float32 wherever it is loaded (evaluate, export, assign, a user's
    `load_model`). Labels, codes and scores are taken from that model, so that
    `labels.csv` holds what `assign` answers for the same rows."""
    if precision == "float32":
        return model
    import keras

    from keras_deepclust.layers.precision import dtype_policy

    with tempfile.TemporaryDirectory() as folder, dtype_policy("float32"), strategy.scope():
        path = Path(folder) / "model.keras"
        model.save(path)
        loaded = keras.saving.load_model(path)
    loaded.labels_ = loaded.predict_labels(x)
    return loaded


def _choose_n_clusters(model_class, x, y, options, seed, scaling, pretrain_epochs, batch_size,
                       noise, k_range, criterion, verbose):
    """Pretrains once, sweeps K on the codes (N2D: on the manifold), and returns a model
    for the best K that keeps the pretrained autoencoder, its pretraining history and
    the sweep."""
    from keras_deepclust import model_selection

    probe = model_class(n_clusters=2, random_state=seed, scaling=scaling, **options)
    history = probe.pretrain(x, epochs=pretrain_epochs, batch_size=batch_size,
                             noise_stddev=noise, verbose=verbose)
    clusterer = "gmm" if getattr(probe, "clusterer", None) == "gmm" else "kmeans"
    k_min, k_max = k_range
    sweep = model_selection.sweep_n_clusters(
        probe.selection_features(x), range(k_min, k_max + 1), clusterer=clusterer, y=y,
        random_state=seed)
    criterion = criterion or ("bic" if clusterer == "gmm" else "silhouette")
    n_clusters = model_selection.best_n_clusters(sweep, criterion)
    if verbose:
        print(f"K chosen by {criterion} over {k_min}..{k_max}: {n_clusters}")
    selection = {"criterion": criterion, "chosen": n_clusters, "sweep": sweep}
    return probe.with_n_clusters(n_clusters), history, selection
