"""What a `--dataset` value names (`identify`) and reading it whole (`load`).

One function, `identify`, decides what a value is (a named data set; a folder of IDX
files, of images or of TFRecord shards; a file, by its suffix), and `load`,
`datasets.stream` and `tfrecords.convert` all go through it.
"""

from dataclasses import dataclass
from pathlib import Path

from keras_deepclust._validation import check_layout
from keras_deepclust.readers import arrays, idx, images, named, tables, usps
from keras_deepclust.readers._files import MIN_SAMPLES, DataNotFoundError

CONVERTED_META = "meta.json"  # written last by `tfrecords.convert`
_SUFFIX_KINDS = {".npy": "npy", ".npz": "npz", ".csv": "csv", ".parquet": "parquet",
                 ".pq": "parquet", ".h5": "usps", ".hdf5": "usps"}
_FORMATS = ".npy, .npz, .csv, .parquet, usps .h5 or IDX (*-ubyte[.gz])"
# The names of a table's label column, the first present: scikit-learn's `as_frame=True`
# writes "target", many public tables "class"; read as features, they would hand the
# clustering its answer.
LABEL_COLUMNS = ("label", "labels", "y", "target", "class")


@dataclass(frozen=True)
class Source:
    """What a `--dataset` value names, as `identify` decided.

    `kind` is "digits"; "named" (an IDX data set by name that is not on this machine);
    "idx_folder" (with `split`); "images" (a folder of same-size images); "converted"
    (a folder written by `tfrecords.convert`); or, for a file, "npy", "npz", "csv",
    "parquet", "usps" or "idx". `path` is the file or folder (None for "digits" and
    "named"); `name` the data set's name when it was given by name.
    """

    kind: str
    path: Path = None
    name: str = ""
    split: str = "test"

    def __str__(self):
        return self.name or str(self.path)


def identify(name_or_path):
    """Decides what `name_or_path` is: a name of `named.NAMED`, a folder (written by `convert`
    when it holds `meta.json`; else of IDX files; else of images) or a file (by its
    suffix; IDX by `ubyte` or `idx` in its name). `load`, `stream` and
    `tfrecords.convert` all ask this one function.

    Returns:
        a `Source`.

    Raises:
        DataNotFoundError: neither a name nor an existing file or folder.
        ValueError: a folder without data, a file of unknown format.
    """
    if isinstance(name_or_path, Source):
        return name_or_path
    if not str(name_or_path).strip():
        raise ValueError("No data set given: the name or path is empty.")
    key = str(name_or_path).replace("-", "_").lower()
    if key in named.NAMED:
        dataset, split = named.NAMED[key]
        if dataset == "digits":
            return Source("digits", name=key)
        folder = named.named_folder(dataset)
        if folder is None:
            return Source("named", name=key, split=split)
        return Source("idx_folder", Path(folder), name=key, split=split)
    path = Path(name_or_path)
    if path.is_dir():
        return _identify_folder(path)
    if not path.exists():
        raise DataNotFoundError(
            f"Unknown dataset {str(name_or_path)!r}: not a name "
            f"({', '.join(sorted(named.NAMED))}) "
            "and no such file or folder."
        )
    if not path.is_file():
        raise ValueError(f"{path} is not a regular file.")
    kind = _SUFFIX_KINDS.get(path.suffix.lower())
    if kind is None and ("ubyte" in path.name or "idx" in path.name):
        kind = "idx"
    if kind is None:
        raise ValueError(f"Cannot tell the format of {path}: use {_FORMATS}.")
    return Source(kind, path)


def _identify_folder(path):
    if (path / CONVERTED_META).exists():
        return Source("converted", path)
    has_test = idx.find_idx(path, "t10k-images-idx3") is not None
    if has_test or idx.find_idx(path, "train-images-idx3") is not None:
        return Source("idx_folder", path, split="test" if has_test else "train")
    if images.holds_images(path):
        return Source("images", path)
    if any(path.glob("*.tfrecord")):
        raise ValueError(f"{path} holds TFRecord shards but no {CONVERTED_META}: an "
                         "interrupted conversion. Convert again into a new folder.")
    raise ValueError(
        f"{path} is a folder without data: a data folder holds "
        "{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] files, or images "
        f"({', '.join(images.IMAGE_SUFFIXES)}; directly or in one sub-folder per class), or is "
        "one written by `keras-deepclust convert`."
    )


# ---------------------------------------------------------------- loading whole
def load(name_or_path, min_samples=MIN_SAMPLES, image_size=None, color_mode="auto"):
    """A data set by name (see `named.NAMED`) or path: a folder of IDX files or of images
    (directly, or one sub-folder per class: the labels), `.npy`, `.npz`, `.csv` or
    `.parquet` (a column named as one of `LABEL_COLUMNS` as labels), `usps.h5` or an IDX
    file. Used by the CLI's `--dataset` and by `assign`.

    Args:
        name_or_path: the name, file or folder (what `identify` takes).
        min_samples: fewer samples are refused (2: a data set to cluster or score).
        image_size, color_mode: how a folder of images is read (`images.image_folder`);
            refused for any other source.

    Returns:
        `(x, y)`; y may be None.
    """
    source = identify(name_or_path)
    if source.kind == "images":
        x, y = images.load_image_folder(source.path, image_size, color_mode)
    else:
        check_no_image_options(source, image_size, color_mode)
        x, y = _LOADERS[source.kind](source)
    check_layout(x.shape, x.dtype, name=str(source), min_samples=min_samples)
    return x, y


def check_no_image_options(source, image_size, color_mode):
    """Refuses an image size or colour mode for a source that is not a folder of images."""
    if image_size is not None or color_mode != "auto":
        option = "an image size" if image_size is not None else "a colour mode"
        raise ValueError(f"{source} is not a folder of images: {option} "
                         "applies to folders of images only.")


def _refuse_converted(source):
    raise ValueError(f"{source} is a folder of TFRecord shards written by `convert`: only "
                     "`fit --stream` (datasets.stream) reads it, batch by batch; give this "
                     "command the data it was converted from.")


_LOADERS = {
    "digits": lambda source: named.load_digits(),
    "named": lambda source: named.named_idx_dataset(*named.NAMED[source.name]),
    "idx_folder": lambda source: idx.load_idx_directory(source.path, source.split),
    "converted": _refuse_converted,
    "npy": lambda source: arrays.from_npy(source.path),
    "npz": lambda source: arrays.from_npz(source.path),
    "csv": lambda source: tables.from_csv(source.path, label_column=LABEL_COLUMNS),
    "parquet": lambda source: tables.from_parquet(source.path, label_column=LABEL_COLUMNS),
    "usps": lambda source: usps.load_usps(source.path),
    "idx": lambda source: idx.from_idx(source.path),
}
