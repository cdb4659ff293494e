"""The samples of `.npy` and IDX files read chunk by chunk, never whole: what
`datasets.stream` and `tfrecords.convert` read data larger than memory from."""

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keras_deepclust._validation import check_class_ids, check_finite, check_labels, check_layout
from keras_deepclust.readers import images, sources
from keras_deepclust.readers._files import MIN_SAMPLES, gzipped, open_binary, reading
from keras_deepclust.readers.arrays import check_complete, npy_header
from keras_deepclust.readers.idx import idx_header, idx_files, read_idx
from keras_deepclust.readers.named import NAMED, not_found

_CHECK_CHUNK_BYTES = 1 << 24  # float32 bytes held at a time by `Records.check_values`


@dataclass(frozen=True)
class _RecordFile:
    """Where the samples of one `.npy` or IDX file lie: they are read in order, from
    `offset` on, as `dtype` rows of `shape[1:]`."""

    path: Path
    offset: int
    dtype: np.dtype
    shape: tuple

    def chunks(self, rows):
        """Arrays of at most `rows` samples, read sequentially (gzip too)."""
        what = "a gzipped file" if gzipped(self.path) else "a file"
        row_bytes = int(np.prod(self.shape[1:])) * self.dtype.itemsize
        with open_binary(self.path) as f:
            with reading(self.path, what):
                f.read(self.offset) if gzipped(self.path) else f.seek(self.offset)
            for start in range(0, self.shape[0], rows):
                count = min(rows, self.shape[0] - start)
                with reading(self.path, what):
                    data = f.read(count * row_bytes)
                if len(data) != count * row_bytes:
                    raise ValueError(f"{self.path} ends after {start + len(data) // row_bytes} "
                                     f"of the {self.shape[0]} samples its header announces.")
                yield np.frombuffer(data, dtype=self.dtype).reshape(count, *self.shape[1:])


class Records:
    """The samples of one or more `.npy`/IDX files (an IDX folder's "all" split is two),
    read in order chunk by chunk, never whole, as float32; and their labels when asked
    for and the source has them (an IDX folder's label files, read whole).

    Made by `records`, which checks every header (a readable format, numeric samples of
    one shape, at least 2 of them, files as long as they announce) and, for floating
    point or gzipped files, reads the data once to refuse NaN, infinite values or a
    cut-short file before any work starts. `n_samples`, `sample_shape` and `labels`
    (an int64 array or None) describe it.
    """

    def __init__(self, files, sample_shape, labels=None):
        self.files = files
        self.sample_shape = tuple(sample_shape)
        self.n_samples = sum(f.shape[0] for f in files)
        self.labels = labels

    def chunks(self, rows):
        """float32 arrays `(rows, *sample_shape)` across the files (the last one
        shorter); NaN or infinite values are refused with their file, row and column."""
        pending, held = [], 0
        for file in self.files:
            row = 0
            for chunk in file.chunks(rows):
                values = chunk.astype(np.float32).reshape(len(chunk), *self.sample_shape)
                check_finite(values, str(file.path), first_row=row)
                row += len(chunk)
                pending.append(values)
                held += len(values)
                while held >= rows:
                    joined = np.concatenate(pending)
                    yield joined[:rows]
                    pending, held = [joined[rows:]], held - rows
        if held:
            yield np.concatenate(pending)

    def check_values(self):
        """Reads the data once when it can hold NaN or be cut short (floating point or
        gzipped files), so that a bad value fails before training, not in the middle."""
        if any(f.dtype.kind == "f" or gzipped(f.path) for f in self.files):
            rows = max(1, _CHECK_CHUNK_BYTES // (4 * int(np.prod(self.sample_shape))))
            for _ in self.chunks(rows):
                pass


def records(name_or_path, with_labels=False, image_size=None, color_mode="auto"):
    """The samples of an `.npy` or IDX file, or of a folder of IDX files (a named
    Fashion-MNIST or MNIST too), as `Records`, checked (see there); or of a folder of
    images, as an `images.ImageFolder` (the same `n_samples`, `sample_shape`, `labels`
    and `chunks`), every image decoded once to check it.

    Args:
        name_or_path: what `identify` takes.
        with_labels: also read an IDX folder's labels (`Records.labels`); a folder of
            images always has its class sub-folders' labels.
        image_size, color_mode: how a folder of images is read (`images.image_folder`);
            refused for any other source.

    Raises:
        ValueError: a source that cannot be read batch by batch (CSV, .npz, ...): the
            message says to convert it first.
    """
    source = sources.identify(name_or_path)
    if source.kind == "images":
        folder = images.image_folder(source.path, image_size, color_mode)
        folder.check_values()
        return folder
    sources.check_no_image_options(source, image_size, color_mode)
    if source.kind == "named":
        raise not_found(NAMED[source.name][0])
    if source.kind in ("npy", "idx"):
        paths, label_paths = [source.path], []
    elif source.kind == "idx_folder":
        paths = idx_files(source.path, source.split, "images-idx3")
        label_paths = idx_files(source.path, source.split, "labels-idx1") if with_labels else []
    else:
        raise ValueError(
            f"{source} is not read batch by batch: streaming reads .npy and IDX files, folders "
            "of IDX files or of images, and folders written by `keras-deepclust convert`. "
            f"Convert it first (keras-deepclust convert {source} --out DIR) and stream DIR.")
    files = [_record_file(path) for path in paths]
    sample_shapes = {_sample_shape(f) for f in files}
    if len(sample_shapes) > 1:
        raise ValueError(f"{source}: the files' samples differ in shape ({sample_shapes}).")
    sample_shape = sample_shapes.pop()
    n_samples = sum(f.shape[0] for f in files)
    check_layout((n_samples, *sample_shape), np.float32, name=str(source),
                 min_samples=MIN_SAMPLES)
    labels = None
    if label_paths:
        labels = np.concatenate([read_idx(p).reshape(-1) for p in label_paths])
        labels = check_class_ids(check_labels(labels, n_samples, name=f"labels of {source}"),
                                 name=f"labels of {source}")
    data = Records(files, sample_shape, labels)
    data.check_values()
    return data


def _record_file(path):
    """The checked `_RecordFile` of an `.npy` or IDX file, from its header."""
    if path.suffix.lower() == ".npy":
        shape, fortran, dtype, offset = npy_header(path)
        if fortran:
            raise ValueError(f"{path} is stored in Fortran order; streaming reads rows in "
                             "C order: save np.ascontiguousarray(x) instead.")
    else:
        with reading(path, "a gzipped IDX file" if gzipped(path) else "an IDX file"):
            with open_binary(path) as f:
                head = f.read(4 + 4 * 255)
        dtype, shape, offset = idx_header(io.BytesIO(head), path)
    check_layout(shape, dtype, name=str(path))
    if not gzipped(path):
        check_complete(path, offset, dtype, shape)
    return _RecordFile(path, offset, dtype, shape)


def _sample_shape(file):
    shape = tuple(file.shape[1:])
    if file.path.suffix.lower() != ".npy" and len(shape) == 2:  # IDX images, as `from_idx`
        shape = (*shape, 1)
    return shape
