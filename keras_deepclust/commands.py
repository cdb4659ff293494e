"""What the command line's commands do besides parsing, as functions a Python user can
call too: fit a method on a data set into a run folder, check a run's folders, write a
run's files, score and export a saved model. `cli` turns flags into their arguments;
`spelling` and `name` arguments put a flag's name in an error."""

import math
import tempfile
from pathlib import Path

from keras_deepclust._io import check_can_write_in
from keras_deepclust.experiment import check_no_other_run
from keras_deepclust.options import BY_NAME, PYTHON, QUICK_EPOCHS


def fit(method, dataset, out, n_clusters=None, *, options=None, random_state=0,
        pretrain_epochs=None, epochs=None, batch_size=256, noise=0.0, scaling="auto",
        strategy="default", precision="auto", resume=None, k_range=(2, 15), criterion=None,
        umap_baseline=False, weight_labels=False, quick=False, stream=False, image_size=None,
        color_mode="auto", overwrite=False, verbose=2, report_entries=None, when_checked=None,
        spelling=PYTHON):
    """`keras-deepclust fit`: trains `method` on `dataset` (`datasets.load`, or streamed
    with `stream`) with `experiment.run` and writes the run into `out` (`write_run`).

    `quick` caps each phase at `QUICK_EPOCHS` (`quick_schedule`); `weight_labels` gives
    the data set's labels to DAC's `fit`; `report_entries` are added to `metrics.json`
    (the CLI records its flags there). Every check that needs no Keras runs first,
    then `when_checked` (the CLI imports TensorFlow there). The other arguments are
    `experiment.run`'s. Returns the `RunResult`.
    """
    from keras_deepclust import datasets, experiment

    check_fit_folders(out, overwrite, resume, stream, n_clusters, k_range, spelling)
    image_options = {"image_size": image_size, "color_mode": color_mode}
    if stream:
        if when_checked is not None:
            when_checked()  # a stream is a tf.data.Dataset
        x, y = datasets.stream(dataset, batch_size=batch_size, **image_options)[0], None
    else:
        x, y = datasets.load(dataset, **image_options)
    experiment.check_data_arguments(x, y, n_clusters, k_range, umap_baseline, dataset,
                                    spelling)
    if when_checked is not None and not stream:
        when_checked()
    from keras_deepclust.models import get_method

    model_class = get_method(method)
    options = dict(options or {})
    for name in options:
        if name in BY_NAME:
            check_option_taken(method, name, spelling)
    fit_options = {}
    if weight_labels:
        check_option_taken(method, "weight_labels", spelling)
        if y is None:
            raise ValueError(f"{dataset} has no labels for {spelling.name('weight_labels')}.")
        fit_options["weight_labels"] = y
    if quick:
        pretrain_epochs, epochs, options = quick_schedule(
            model_class, x, batch_size, pretrain_epochs, epochs, options,
            pretrains=pretrain_epochs is not None or n_clusters == "auto")
    result = experiment.run(
        method, x, y, n_clusters, options=options, random_state=random_state,
        pretrain_epochs=pretrain_epochs, epochs=epochs, batch_size=batch_size, noise=noise,
        scaling=scaling, strategy=strategy, precision=precision, resume=resume,
        k_range=k_range, criterion=criterion, umap_baseline=umap_baseline,
        fit_options=fit_options, dataset=str(dataset), verbose=verbose, spelling=spelling)
    result.report.update(report_entries or {})
    write_run(result, out, image_files(dataset, **image_options), resume=resume,
              overwrite=overwrite)
    return result


def quick_schedule(model_class, x, batch_size, pretrain_epochs, epochs, options, pretrains):
    """`(pretrain_epochs, epochs, options)` capped for a quick run: pretraining (when the
    method needs it or `pretrains`) at `QUICK_EPOCHS["pretrain_epochs"]`, or at the epochs
    that make `QUICK_EPOCHS["pretrain_steps"]` optimizer steps over `x` when that is more
    (small data), never more than the method's shortest schedule; the clustering epochs
    and a refinement's epochs at `QUICK_EPOCHS["epochs"]`."""
    import numpy as np

    cap = QUICK_EPOCHS["epochs"]
    if pretrains or getattr(model_class, "NEEDS_PRETRAINING", False):
        quick = QUICK_EPOCHS["pretrain_epochs"]
        if isinstance(x, np.ndarray):  # a stream's length is unknown: epochs alone
            steps_per_epoch = math.ceil(len(x) / batch_size)
            quick = max(quick, math.ceil(QUICK_EPOCHS["pretrain_steps"] / steps_per_epoch))
        quick = min(quick, *model_class.PRETRAIN_EPOCHS.values())
        pretrain_epochs = min(pretrain_epochs or quick, quick)
    if model_class.ITERATIVE_FIT:
        epochs = min(epochs or cap, cap)
    if "refine_epochs" in model_class.OPTIONS:
        options = dict(options, refine_epochs=min(options.get("refine_epochs", cap), cap))
    return pretrain_epochs, epochs, options


def check_option_taken(method, name, spelling=PYTHON):
    """Refuses the option `name` (a row of `options.TABLE`) unless `method`'s class takes
    it (`OPTIONS`, or `FIT_OPTIONS` for a `fit` option); the error names the methods
    that do."""
    from keras_deepclust.models import get_method, list_methods

    kind = "FIT_OPTIONS" if BY_NAME[name].fit else "OPTIONS"
    if name not in getattr(get_method(method), kind):
        takers = [other for other in list_methods() if name in getattr(get_method(other), kind)]
        raise ValueError(f"{spelling.name(name)} is for {', '.join(takers)} only, not "
                         f"{method}.")


def check_fit_folders(out, overwrite=False, resume=None, stream=False, n_clusters=None,
                      k_range=None, spelling=PYTHON):
    """Refuses, before any work, output and backup folders a run cannot use
    (`check_run_folders`) and arguments that cannot go together."""
    name = spelling.name
    if check_run_folders(out, overwrite, resume, spelling):
        print(f"{name('overwrite')}: the run in {out} is replaced when this one has ended.")
    if stream:
        if resume:
            raise ValueError(f"{name('resume')} needs the data loaded, not {name('stream')}: "
                             "a backup is checked against the data's fingerprint.")
        if not isinstance(n_clusters, int):
            raise ValueError(f"{name('stream')} needs {spelling.setting('n_clusters', 'K')} "
                             "(a stream has no labels to count).")
    if k_range is not None and k_range[0] > k_range[1]:
        raise ValueError(f"{name('k_range')} MIN MAX needs MIN <= MAX, got {k_range[0]} "
                         f"{k_range[1]}.")


def check_writable_folder(folder, name="out"):
    """Refuses a folder path that names a file, lies inside a file, or lies in a folder
    this process cannot write to (found before training, not after)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{name} {folder} is a file, not a folder: name a folder.")
    check_can_write_in(folder, f"{name} {folder}")


def check_run_folders(out, overwrite=False, resume=None, spelling=PYTHON):
    """Refuses, before any work: an `out` that is a file or holds another run (unless
    `overwrite`); a `resume` folder that overlaps `out`, is a file, or holds anything its
    backup did not write (its files are removed when the run ends). `spelling` names the
    arguments in the errors (the CLI's flags).

    Returns:
        The files of the previous run in `out` (replaced when the new one has ended).
    """
    from keras_deepclust._backup_files import PHASES, foreign_entries

    out_name, resume_name = spelling.name("out"), spelling.name("resume")
    check_writable_folder(out, out_name)
    previous = check_no_other_run(out, overwrite, spelling)
    if resume:
        out_path, resume_path = Path(out).resolve(), Path(resume).resolve()
        if out_path == resume_path or out_path in resume_path.parents or (
                resume_path in out_path.parents):
            raise ValueError(f"{resume_name} {resume_path} and {out_name} {out_path} overlap: "
                             "the backup folder is removed when the run ends, so it must lie "
                             "outside the output folder and not contain it.")
        check_writable_folder(resume, resume_name)
        foreign = foreign_entries(resume, PHASES)
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more"
                                              if len(foreign) > 5 else "")
            raise ValueError(f"{resume_name} {resume} holds files no backup wrote ({shown}): "
                             "a backup's files are removed when the run ends, so name a new "
                             "or empty folder.")
    return previous


def write_run(result, out, files=None, resume=None, overwrite=False):
    """Writes a `RunResult`'s files into `out` (`RunResult.write`: another run there is
    replaced only with `overwrite`) on the chief of a multi-worker run, the other workers
    writing into a scratch folder as their predict passes are collective; prints its
    summary, and removes the backup in `resume` once the run is written."""
    import numpy as np

    from keras_deepclust import distribute
    from keras_deepclust._backup_files import PHASES, remove_backup

    strategy = result.model.distribute_strategy
    if distribute.is_chief(strategy):
        replaced = result.write(out, files, overwrite=overwrite)
        print("\n" + result.summary())
        print(f"wrote {out}/model.keras, metrics.json, report.html and plots")
        if replaced:
            print(f"removed the previous run's {', '.join(replaced)}, which this run does "
                  "not write")
    else:
        with tempfile.TemporaryDirectory() as scratch:
            result.write(scratch, files)
        print(f"worker {strategy.cluster_resolver.task_id}: done; the chief writes the outputs")
    if distribute.is_multi_worker(strategy):
        # Equal on every worker when training kept them in sync.
        weights = result.model.get_weights()
        print(f"weights digest: {sum(float(np.abs(w).sum()) for w in weights):.6f}")
    if resume and distribute.is_chief(strategy):
        remove_backup(resume, PHASES)


def image_files(dataset, image_size=None, color_mode="auto"):
    """The files of a folder of images in row order, relative to it (labels.csv's `file`
    column); None for any other data."""
    from keras_deepclust import readers

    source = readers.identify(dataset)
    if source.kind != "images":
        return None
    return readers.image_folder(source.path, image_size=image_size,
                                color_mode=color_mode).relative_paths()


def load_model(path):
    """`keras.saving.load_model(path)`, with a clear error for a missing file."""
    import keras

    if not Path(path).is_file():
        raise FileNotFoundError(f"No such model file: {path}")
    return keras.saving.load_model(path)


def data_before_model(dataset):
    """`(x, y)` of `dataset`, read before the model is loaded so that bad data fails
    first; None for a folder of images, which is read at the model's input size
    (`data_for_model`)."""
    from keras_deepclust import datasets

    source = datasets.identify(dataset)
    return None if source.kind == "images" else datasets.load(source)


def data_for_model(dataset, model, model_path, data=None):
    """`(x, y)` of `dataset` (`data` when it was read already, see `data_before_model`);
    a folder of images is read at the size and colour mode of the model's input, as
    `assign` reads it."""
    if data is not None:
        return data
    from keras_deepclust import datasets, readers

    image_size, color_mode = readers.images.options_for_input(model.sample_shape, model_path)
    return datasets.load(dataset, image_size=image_size, color_mode=color_mode)


def evaluate(model_path, dataset, batch_size=256, when_checked=None):
    """The scores (`metrics.clustering_scores`) of the saved model's labels of the
    labelled `dataset`. `when_checked` runs once the data is known to have labels,
    before the model is loaded (the CLI imports TensorFlow there)."""
    from keras_deepclust import metrics

    data = data_before_model(dataset)
    if data is not None and data[1] is None:
        raise ValueError(f"{dataset} has no labels to evaluate against.")
    if when_checked is not None:
        when_checked()
    model = load_model(model_path)
    x, y = data_for_model(dataset, model, model_path, data)
    if y is None:
        raise ValueError(f"{dataset} has no labels (class sub-folders) to evaluate against.")
    return metrics.clustering_scores(y, model.predict_labels(x, batch_size=batch_size))


def export_model(model_path, out, formats, name="clusterer", dataset=None,
                 include_embedding=False, quantization=None, versioned=False,
                 when_checked=None):
    """Exports the saved model's assigner (`export.export`), its parity checked on
    `dataset` (whose scores the metadata records when it has labels) or on random rows.
    Every check that needs no model runs first, then `when_checked`."""
    from keras_deepclust import export, metrics

    export.check_export(out, formats, name, quantization, versioned)
    data = None if dataset is None else data_before_model(dataset)
    if when_checked is not None:
        when_checked()
    model = load_model(model_path)
    sample, scores = None, None
    if dataset is not None:
        x, y = data_for_model(dataset, model, model_path, data)
        sample = x[:1024]
        if y is not None:
            scores = metrics.clustering_scores(y, model.predict_labels(x))
    return export.export(model, out, formats=formats, name=name, sample=sample,
                         include_embedding=include_embedding, quantization=quantization,
                         metrics=scores, versioned=versioned)
