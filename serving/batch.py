"""Assigning clusters to a data file in chunks, with flat memory for `.npy` inputs."""

import os
import sys
import tempfile
from pathlib import Path

import numpy as np


def _rows(path):
    """A row-indexable array for `path`: memory-mapped for `.npy`, loaded otherwise."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No such data file: {path}")
    if path.suffix == ".npy":
        return np.load(path, mmap_mode="r", allow_pickle=False)
    from keras_deepclust import datasets  # numpy only; loads and scales the whole file

    return datasets.load(path)[0]


def _scaled(chunk):
    # The package's loaders scale uint8 pixels by 255; a memory-mapped uint8 file gets the
    # same, chunk by chunk. Other dtypes must already be scaled like the training data.
    return chunk.astype(np.float32) / 255.0 if chunk.dtype == np.uint8 else chunk


def assign_file(assigner, data_path, out_path, chunk_rows=65536, probabilities=False,
                progress=True):
    """Writes `row,cluster[,p_0..p_K-1]` for every row of `data_path` to a CSV.

    Rows are read, assigned and written `chunk_rows` at a time, so a memory-mapped
    `.npy` larger than RAM keeps memory flat. The CSV is written under a temporary name
    and renamed when complete.

    Args:
        assigner: a `ClusterAssigner`.
        data_path: `.npy` (memory-mapped), or any format `keras_deepclust.datasets.load` reads.
        out_path: the CSV to write.
        chunk_rows: rows per chunk.
        probabilities: also write the cluster probabilities.
        progress: report progress on standard error.

    Returns:
        The number of rows assigned.
    """
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows!r}.")
    rows = _rows(data_path)
    n = len(rows)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.name}.")
    try:
        with os.fdopen(handle, "w") as f:
            header = ["row", "cluster"]
            if probabilities:
                header += [f"p_{k}" for k in range(assigner.n_clusters)]
            f.write(",".join(header) + "\n")
            for start in range(0, n, chunk_rows):
                outputs = assigner.assign(_scaled(np.asarray(rows[start:start + chunk_rows])))
                columns = [np.arange(start, start + len(outputs["cluster"]))[:, None],
                           outputs["cluster"][:, None]]
                fmt = ["%d", "%d"]
                if probabilities:
                    columns.append(outputs["probabilities"])
                    fmt += ["%.6g"] * assigner.n_clusters
                np.savetxt(f, np.hstack(columns).astype(object), fmt=",".join(fmt))
                if progress:
                    done = min(start + chunk_rows, n)
                    print(f"\rassigned {done}/{n} rows ({done / n:.0%})", end="",
                          file=sys.stderr, flush=True)
        if progress:
            print(file=sys.stderr)
        os.replace(tmp, out_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return n
