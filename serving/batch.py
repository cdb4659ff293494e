"""Assigning clusters to a data file in chunks, with flat memory for `.npy` inputs.

Everything that can be checked before the first assignment is: the output path, the
data file's format, numeric type, rank and row count (from an `.npy` header alone) and
its samples' shape against the model's input. Each error names the file.
"""

import contextlib
import csv
import os
import sys
from pathlib import Path

import numpy as np

from keras_deepclust._io import atomic_path, check_can_write_in
from keras_deepclust._validation import check_positive_int
from keras_deepclust.serving.metadata import metadata_path

def _npy_chunks(path, chunk_rows):
    """`(shape, chunks)` of an `.npy`, its header checked before anything is read.
    Rows are read with plain file reads: unlike a memory map, the pages read do not stay
    in the process, so memory stays flat for any size. A Fortran-ordered array (what
    `np.save(df.values)` writes) is read through a memory map instead, whose rows are
    not contiguous on disk. `chunks` is a generator: close it to close the file."""
    from keras_deepclust.readers import read_npy_header  # numpy only

    shape, fortran_order, dtype, offset = read_npy_header(path)
    if fortran_order:
        def chunks():
            x = np.load(path, mmap_mode="r", allow_pickle=False)
            for start in range(0, shape[0], chunk_rows):
                yield start, np.ascontiguousarray(x[start:start + chunk_rows])
        return shape, chunks()
    row_items = int(np.prod(shape[1:]))

    def chunks():
        with open(path, "rb") as f:
            f.seek(offset)
            for start in range(0, shape[0], chunk_rows):
                rows = min(chunk_rows, shape[0] - start)
                data = np.fromfile(f, dtype=dtype, count=rows * row_items)
                if data.size != rows * row_items:  # the file shrank since its header was read
                    raise ValueError(f"{path} ends after {start + data.size // row_items} of "
                                     f"its {shape[0]} rows.")
                yield start, data.reshape(rows, *shape[1:])

    return shape, chunks()


def _load_whole(path):
    """The rows of a non-`.npy` data file, as `fit --dataset` reads them (a label column
    left out), with every error naming the file."""
    from keras_deepclust import readers  # numpy only (pyarrow for Parquet); whole file

    # "./digits", not "digits": a file is never taken for the data set of that name.
    as_path = str(path) if path.is_absolute() else f".{os.sep}{path}"
    try:
        return readers.load(as_path, min_samples=1)[0]
    except ValueError as error:  # a reader's own message (pyarrow's) may not name the file
        if str(path) in str(error):
            raise
        raise ValueError(f"cannot read {path}: {error}") from None
    except ImportError as error:  # the light `assign` install has no pyarrow (Parquet)
        raise ValueError(str(error) if str(path) in str(error)
                         else f"cannot read {path}: {error}.") from None


def _chunks(path, chunk_rows, sample_shape):
    """`(shape, iterator of (start, rows), files)` of a data file or folder; its header
    (`.npy`), first image (a folder of images, read at the model's `sample_shape`) or
    whole contents (other formats) are read and checked here. `files` names a folder's
    images in row order (None for other data). The iterator is a generator: close it to
    release the file."""
    if not path.exists():
        raise FileNotFoundError(f"No such data file: {path}")
    is_npy = path.suffix.lower() == ".npy"
    if is_npy and path.is_dir():
        raise ValueError(f"{path} is a folder, not an .npy file.")
    try:
        if is_npy:
            return (*_npy_chunks(path, chunk_rows), None)
        if path.is_dir():
            from keras_deepclust.readers import images  # numpy only (Pillow for images)

            if images.holds_images(path):
                return _image_chunks(path, chunk_rows, sample_shape)
        x = _load_whole(path)
    except FileNotFoundError:
        raise
    except OSError as error:  # unreadable: permissions, a device error
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from None
    rows = ((start, x[start:start + chunk_rows]) for start in range(0, len(x), chunk_rows))
    return x.shape, rows, None


def _image_chunks(folder, chunk_rows, sample_shape):
    """`_chunks` of a folder of images, read at the size and colour mode of the model's
    input, one chunk at a time."""
    from keras_deepclust.readers import images

    image_size, color_mode = images.options_for_input(sample_shape)
    data = images.image_folder(folder, image_size, color_mode)

    def chunks():
        start = 0
        for rows in data.chunks(chunk_rows):
            yield start, rows
            start += len(rows)

    return (data.n_samples, *data.sample_shape), chunks(), data.relative_paths()


def _check_out_path(out_path, inputs):
    """Refuses, before any data is read, an output path that is a folder, lies under a
    file or in a folder this process cannot write to, or is one of `inputs` (the data
    file, the model and its metadata): assigning must never overwrite what it reads. A missing parent folder is created later, as
    by the other commands."""
    if out_path.is_dir():
        raise ValueError(f"{out_path} is a folder: name the CSV file to write in it, e.g. "
                         f"{out_path / 'assignments.csv'}.")
    check_can_write_in(out_path.parent, out_path)
    for role, path in inputs:
        same = (os.path.samefile(out_path, path) if out_path.exists() and path.exists()
                else out_path.resolve() == path.resolve())
        if same:
            raise ValueError(f"{out_path} is the {role} itself: assign never overwrites its "
                             "inputs; write the assignments to another file.")


def assign_file(assigner, data_path, out_path, chunk_rows=65536, probabilities=False,
                progress=True):
    """Writes `row,cluster[,p_0..p_K-1]` for every row of `data_path` to a CSV
    (`row,file,cluster[,...]` for a folder of images, `file` relative to it).

    Rows are the raw values the model was fitted on (its input scaling is inside the
    artifact). They are read, assigned and written `chunk_rows` at a time; an `.npy`
    is read chunk by chunk, so one larger than RAM keeps memory flat. The CSV is written
    under a temporary name and renamed when complete, so an earlier CSV at `out_path` is
    replaced only by a complete one, and nothing is left when assignment fails.

    Checked before anything is written (ValueError naming the file): the output path
    (not a folder, not the data or model file), the data file (readable, numeric,
    samples in rows, their shape the model's input). Values are checked chunk by chunk;
    a bad one is named by its index in the whole file.

    Args:
        assigner: a `ClusterAssigner`.
        data_path: `.npy` (read in chunks, any memory order), or any format
            `keras_deepclust.readers.load` reads (loaded whole): `.csv`, `.parquet`
            (with pyarrow), `.npz`, IDX, read as `fit --dataset` reads them (a "label"
            column is left out); or a folder of images (directly or in class
            sub-folders; Pillow), each read at the size and colour mode of the model's
            input, one chunk at a time.
        out_path: the CSV to write; missing parent folders are created.
        chunk_rows: rows per chunk.
        probabilities: also write the cluster probabilities.
        progress: report progress on standard error (the line is ended even when an
            error stops the run).

    Returns:
        The number of rows assigned.
    """
    chunk_rows = check_positive_int(chunk_rows, "chunk_rows")
    data_path, out_path = Path(data_path), Path(out_path)
    _check_out_path(out_path, [("data file", data_path), ("model file", assigner.path),
                               ("model's metadata file", metadata_path(assigner.path))])
    shape, chunks, files = _chunks(data_path, chunk_rows, assigner.sample_shape)
    with contextlib.closing(chunks):
        assigner.check_input_shape(shape, name=str(data_path))
        with _progress_line(progress) as report:
            with atomic_path(out_path) as tmp, open(tmp, "w") as f:
                _write_assignments(f, assigner, chunks, str(data_path), probabilities,
                                   lambda done: report(done, shape[0]), files)
    return shape[0]


def _write_assignments(f, assigner, chunks, name, probabilities, report, files=None):
    """Writes the CSV header, then each chunk's assignments as it is assigned; with
    `files`, each row's file (quoted as CSV needs) after its number."""
    header = ["row", "cluster"] if files is None else ["row", "file", "cluster"]
    fmt = ["%d", "%d"]
    if probabilities:
        header += [f"p_{k}" for k in range(assigner.n_clusters)]
        fmt += ["%.6g"] * assigner.n_clusters
    f.write(",".join(header) + "\n")
    for start, rows in chunks:
        outputs = assigner.assign(rows, first_row=start, name=name)
        columns = [np.arange(start, start + len(rows))[:, None], outputs["cluster"][:, None]]
        if probabilities:
            columns.append(outputs["probabilities"])
        if files is None:
            np.savetxt(f, np.hstack(columns).astype(object), fmt=",".join(fmt))
        else:  # the file after the row number, quoted by the csv module where it must be
            cells = [(",".join(fmt) % tuple(row)).split(",") for row in
                     np.hstack(columns).astype(object)]
            csv.writer(f, lineterminator="\n").writerows(
                [row[0], files[start + i], *row[1:]] for i, row in enumerate(cells))
        report(start + len(rows))


@contextlib.contextmanager
def _progress_line(enabled):
    """Yields `report(done, total)`, which rewrites one progress line on standard error;
    the line is ended on exit, error or not, so an error message starts a line of its
    own."""
    started = False

    def report(done, total):
        nonlocal started
        if enabled:
            print(f"\rassigned {done}/{total} rows ({done / total:.0%})", end="",
                  file=sys.stderr, flush=True)
            started = True

    try:
        yield report
    finally:
        if started:
            print(file=sys.stderr, flush=True)
