"""Assigning clusters to a data file in chunks, with flat memory for `.npy` inputs."""

import sys
from pathlib import Path

import numpy as np

from keras_deepclust._io import atomic_path
from keras_deepclust._validation import check_positive_int


def _npy_chunks(path, chunk_rows):
    """`(n_rows, chunks)` of an `.npy` read with plain file reads: unlike a memory map,
    the pages read do not stay in the process, so memory stays flat for any size.
    A Fortran-ordered array (what `np.save(df.values)` writes) is read through a
    memory map instead, whose rows are not contiguous on disk."""
    f = open(path, "rb")
    version = np.lib.format.read_magic(f)
    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                   else np.lib.format.read_array_header_2_0)
    shape, fortran_order, dtype = read_header(f)
    if len(shape) < 2 or dtype.hasobject:
        f.close()
        raise ValueError(f"{path} must hold a numeric array of shape (n, ...), got shape "
                         f"{shape}{' of Python objects' if dtype.hasobject else ''}.")
    if fortran_order:
        f.close()
        x = np.load(path, mmap_mode="r", allow_pickle=False)
        return shape[0], ((start, np.ascontiguousarray(x[start:start + chunk_rows]))
                          for start in range(0, shape[0], chunk_rows))
    row_items = int(np.prod(shape[1:]))

    def chunks():
        with f:
            for start in range(0, shape[0], chunk_rows):
                rows = min(chunk_rows, shape[0] - start)
                data = np.fromfile(f, dtype=dtype, count=rows * row_items)
                if data.size != rows * row_items:
                    raise ValueError(f"{path} is truncated: expected {shape[0]} rows.")
                yield start, data.reshape(rows, *shape[1:])

    return shape[0], chunks()


def _chunks(path, chunk_rows):
    """`(n_rows, iterator of (start, rows))` for a data file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No such data file: {path}")
    if path.suffix == ".npy":
        return _npy_chunks(path, chunk_rows)
    from keras_deepclust import datasets  # numpy only (pyarrow for Parquet); whole file

    x = datasets.load(path)[0]  # the rows `fit --dataset` takes: a label column is left out
    return len(x), ((start, x[start:start + chunk_rows]) for start in range(0, len(x), chunk_rows))


def assign_file(assigner, data_path, out_path, chunk_rows=65536, probabilities=False,
                progress=True):
    """Writes `row,cluster[,p_0..p_K-1]` for every row of `data_path` to a CSV.

    Rows are the raw values the model was fitted on (its input scaling is inside the
    artifact). They are read, assigned and written `chunk_rows` at a time; an `.npy`
    is read chunk by chunk, so one larger than RAM keeps memory flat. The CSV is written under a temporary name
    and renamed when complete.

    Args:
        assigner: a `ClusterAssigner`.
        data_path: `.npy` (read in chunks, any memory order), or any format
            `keras_deepclust.datasets.load` reads (loaded whole): `.csv`, `.parquet`
            (with pyarrow), `.npz`, IDX, read as `fit --dataset` reads them (a "label"
            column is left out).
        out_path: the CSV to write.
        chunk_rows: rows per chunk.
        probabilities: also write the cluster probabilities.
        progress: report progress on standard error.

    Returns:
        The number of rows assigned.
    """
    chunk_rows = check_positive_int(chunk_rows, "chunk_rows")
    n, chunks = _chunks(data_path, chunk_rows)
    with atomic_path(out_path) as tmp:
        with open(tmp, "w") as f:
            header = ["row", "cluster"]
            if probabilities:
                header += [f"p_{k}" for k in range(assigner.n_clusters)]
            f.write(",".join(header) + "\n")
            for start, rows in chunks:
                outputs = assigner.assign(rows)
                columns = [np.arange(start, start + len(outputs["cluster"]))[:, None],
                           outputs["cluster"][:, None]]
                fmt = ["%d", "%d"]
                if probabilities:
                    columns.append(outputs["probabilities"])
                    fmt += ["%.6g"] * assigner.n_clusters
                np.savetxt(f, np.hstack(columns).astype(object), fmt=",".join(fmt))
                if progress:
                    done = start + len(rows)
                    print(f"\rassigned {done}/{n} rows ({done / n:.0%})", end="",
                          file=sys.stderr, flush=True)
        if progress:
            print(file=sys.stderr)
    return n
