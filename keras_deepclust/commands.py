"""What the command line's commands do besides parsing, as functions a Python user can
call too: check a run's folders, write a run's files, score and export a saved model.
`cli` turns flags into their arguments; `name` arguments put a flag's name in an error."""

import os
import tempfile
from pathlib import Path

from keras_deepclust._io import nearest_existing
from keras_deepclust.experiment import check_no_other_run


def check_writable_folder(folder, name="out"):
    """Refuses a folder path that names a file, lies inside a file, or lies in a folder
    this process cannot write to (found before training, not after)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{name} {folder} is a file, not a folder: name a folder.")
    existing = nearest_existing(folder)
    if not existing.is_dir():
        raise ValueError(f"{name} {folder} lies inside {existing}, which is a file.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{name} {folder}: {existing} is not writable by this user.")


def check_run_folders(out, overwrite=False, resume=None,
                      names=("out", "overwrite=True", "resume")):
    """Refuses, before any work: an `out` that is a file or holds another run (unless
    `overwrite`); a `resume` folder that overlaps `out`, is a file, or holds anything its
    backup did not write (its files are removed when the run ends). `names` are the
    three arguments' names in the errors (the CLI's flags).

    Returns:
        The files of the previous run in `out` (replaced when the new one has ended).
    """
    from keras_deepclust._backup_files import PHASES, foreign_entries

    out_name, overwrite_name, resume_name = names
    check_writable_folder(out, out_name)
    previous = check_no_other_run(out, overwrite, (out_name, overwrite_name))
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
