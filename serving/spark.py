"""Cluster assignment of Spark DataFrames with an exported ONNX assigner.

Needs ``keras-deepclust[spark]`` (pyspark, pandas, pyarrow and onnxruntime; no TensorFlow,
no Keras) on the driver and on every executor. pyspark is imported inside the functions
only, so ``import keras_deepclust.serving`` stays light; import this module by its full
name:

```python
from keras_deepclust.serving.spark import assign_clusters
```

Each Python worker process opens one ONNX Runtime session per model and keeps it for
the tasks it runs next (Spark reuses its Python workers unless
``spark.python.worker.reuse`` is false), so the model is loaded once per worker, not
once per partition.
"""

import functools
import numbers
import os
from pathlib import Path

import numpy as np

from keras_deepclust._validation import check_positive_int
from keras_deepclust.serving.metadata import METADATA_SUFFIX

# Spark SQL types a feature may have (by class name, so that pyspark is imported lazily).
# DecimalType is left out: cast it to double first.
_NUMERIC_TYPES = ("ByteType", "ShortType", "IntegerType", "LongType", "FloatType", "DoubleType")
_VECTOR_COLUMN = "__keras_deepclust_features__"  # a Spark ML vector column, as an array
_CACHE_SIZE = 8

# One ClusterAssigner (one ONNX Runtime session) per model and settings, per Python process.
_ASSIGNERS = {}


def assign_clusters(df, onnx_path, features_col="features", batch_size=4096,
                    output_col="cluster", probabilities_col=None, embedding_col=None,
                    intra_op_threads=1, verify_checksum=True, check_first_row=True):
    """Adds the cluster of every row of a Spark DataFrame, assigned by an ONNX assigner.

    The returned DataFrame is lazy, like any Spark transformation: the rows are assigned
    when an action (``write``, ``count``, ``collect``...) runs, by ``df.mapInPandas`` on
    the executors, `batch_size` rows per ONNX Runtime call. Each Python worker opens one
    ONNX Runtime session per model and reuses it for all the partitions it processes.

    The arguments are checked on the driver before anything runs on Spark: the model
    file and its metadata, the feature column(s) and their types, the feature width
    against the model's input (for an array or vector column, on the first row), the
    names of the new columns. Rows are checked again on the executors (nulls, NaN,
    arrays of another length), where an error fails the Spark job with a message that
    names the column.

    Flat feature vectors are reshaped to the model's sample shape: a model trained on
    8x8x1 images takes arrays of 64 values (row-major, as ``x.reshape(n, -1)`` gives).
    Rows are the raw values the model was fitted on: the input scaling `fit` learnt
    is part of the exported model, as for `ClusterAssigner`.

    On a cluster, every executor needs the model file and its ``.metadata.json``. Ship
    both with ``spark-submit --files model.onnx,model.onnx.metadata.json`` or
    ``spark.sparkContext.addFile`` for each file; when `onnx_path` does not exist on an
    executor (or the driver), the file of the same name is taken from
    ``pyspark.SparkFiles.get``. A path on storage every node mounts works as well.

    Args:
        df: a `pyspark.sql.DataFrame`.
        onnx_path: the `.onnx` file written by `keras_deepclust.export.export_onnx`, its
            `.metadata.json` beside it; or the name of a file shipped with `--files` /
            `addFile`.
        features_col: the column holding each row's features (``array<float>``,
            ``array<double>``, an integer array, or a Spark ML vector), or a list of
            numeric column names, one per feature, in the model's feature order.
        batch_size: rows per ONNX Runtime call; partitions are processed in batches of
            this size (Arrow batches are split or joined to reach it).
        output_col: name of the new ``int`` column of cluster ids.
        probabilities_col: if given, name of a new ``array<float>`` column with the K
            cluster probabilities.
        embedding_col: if given, name of a new ``array<float>`` column with the
            embedding; the model must have been exported with `include_embedding=True`.
        intra_op_threads: ONNX Runtime threads per session. Spark already runs one task
            per core, so the default 1 keeps the cores from being oversubscribed; raise
            it together with ``spark.task.cpus``. None: ONNX Runtime's default (all cores).
        verify_checksum: refuse a model file that changed after export.
        check_first_row: read the first row (a small Spark job) to check the width of an
            array or vector column on the driver. With False, nothing runs on Spark
            until an action, and a wrong width fails on the executors instead.

    Returns:
        A new DataFrame: the columns of `df`, then `output_col` (int, not null), then
        `probabilities_col` and `embedding_col` when asked for.

    Raises:
        TypeError: `df` is not a Spark DataFrame, `features_col` not a name or a list
            of names.
        FileNotFoundError: no model file (locally or in `SparkFiles`), or no metadata.
        ValueError: a feature column is missing or not numeric, the feature width does
            not match the model's input, a new column already exists, a bad argument.

    Example:

    ```python
    from pyspark.sql import SparkSession
    from keras_deepclust.serving.spark import assign_clusters

    spark = SparkSession.builder.getOrCreate()
    df = spark.read.parquet("s3://bucket/customers.parquet")   # "features": array<float>
    labelled = assign_clusters(df, "clusterer.onnx", batch_size=8192,
                               probabilities_col="probabilities")
    labelled.write.parquet("s3://bucket/customers_clustered.parquet")

    # One numeric column per feature:
    assign_clusters(df, "clusterer.onnx", features_col=["age", "income", "visits"])
    ```
    """
    from keras_deepclust.serving.assigner import ClusterAssigner
    from pyspark.sql import DataFrame
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    if not isinstance(df, DataFrame):
        raise TypeError(f"df must be a pyspark.sql.DataFrame, got {type(df).__name__}.")
    batch_size = check_positive_int(batch_size, "batch_size")
    if intra_op_threads is not None:
        intra_op_threads = check_positive_int(intra_op_threads, "intra_op_threads")

    path = _resolve_model(onnx_path)
    assigner = ClusterAssigner(path, batch_size=batch_size, intra_op_threads=1,
                               verify_checksum=verify_checksum)
    sample_shape = _sample_shape(assigner)
    width = int(np.prod(sample_shape))
    outputs = assigner.metadata["outputs"]
    if embedding_col is not None and "embedding" not in outputs:
        raise ValueError(
            f"embedding_col={embedding_col!r} but {path} has no embedding output (outputs "
            f"{outputs}); export it with include_embedding=True."
        )

    fields = {field.name: field for field in df.schema.fields}
    new_columns = [output_col] + [name for name in (probabilities_col, embedding_col)
                                  if name is not None]
    for name in new_columns:
        if not isinstance(name, str) or not name:
            raise ValueError(f"new column names must be non-empty strings, got {name!r}.")
    if len({name.lower() for name in new_columns}) != len(new_columns):
        raise ValueError(f"the new columns need distinct names, got {new_columns}.")
    existing = {name.lower(): name for name in fields}
    for name in new_columns:
        if name.lower() in existing:
            raise ValueError(
                f"column {existing[name.lower()]!r} already exists in the DataFrame; choose "
                f"another output name or drop it first."
            )

    source = df
    if isinstance(features_col, str):
        field = _field(fields, features_col)
        kind = _array_kind(field, T)
        if kind == "vector":
            from pyspark.ml.functions import vector_to_array

            if _VECTOR_COLUMN in fields:
                raise ValueError(f"column {_VECTOR_COLUMN!r} is reserved; rename it.")
            source = df.withColumn(_VECTOR_COLUMN,
                                   vector_to_array(F.col(_quoted(features_col)), "float64"))
            features = _VECTOR_COLUMN
        else:
            features = features_col
        if check_first_row:
            first = source.select(F.size(F.col(_quoted(features))).alias("n")).head()
            if first is not None and first["n"] is not None and first["n"] >= 0 \
                    and first["n"] != width:
                raise ValueError(
                    f"features column {features_col!r} holds {first['n']} values in its "
                    f"first row but the model takes {width} values per row (samples of "
                    f"shape {sample_shape})."
                )
    elif isinstance(features_col, (list, tuple)) and features_col:
        features = list(features_col)
        for name in features:
            if not isinstance(name, str):
                raise TypeError(f"features_col must list column names, got {name!r}.")
            field = _field(fields, name)
            if type(field.dataType).__name__ not in _NUMERIC_TYPES:
                raise ValueError(
                    f"feature column {name!r} has type {field.dataType.simpleString()}; "
                    f"feature columns must be numeric (byte, short, int, bigint, float or "
                    f"double)."
                )
        if len(features) != width:
            raise ValueError(
                f"features_col lists {len(features)} columns but the model takes {width} "
                f"values per row (samples of shape {sample_shape})."
            )
    else:
        raise TypeError(
            "features_col must be a column name or a non-empty list of column names, got "
            f"{features_col!r}."
        )

    schema_fields = list(df.schema.fields)
    schema_fields.append(T.StructField(output_col, T.IntegerType(), False))
    for name in (probabilities_col, embedding_col):
        if name is not None:
            schema_fields.append(T.StructField(name, T.ArrayType(T.FloatType(), False), False))
    spec = {
        # The path as the driver found it; an executor without it looks in SparkFiles.
        "path": str(Path(path).resolve()),
        "batch_size": batch_size,
        "intra_op_threads": intra_op_threads,
        "verify_checksum": verify_checksum,
        "features": features,
        "features_name": features_col if isinstance(features_col, str) else None,
        "width": width,
        "output_col": output_col,
        "probabilities_col": probabilities_col,
        "embedding_col": embedding_col,
        "drop": [_VECTOR_COLUMN] if source is not df else [],
        # mapInPandas hands a user-defined type (a Spark ML vector...) to pandas as a dict of
        # its fields but wants the Python object back: the workers rebuild it.
        "udt_columns": [(field.name, field.dataType) for field in df.schema.fields
                        if isinstance(field.dataType, T.UserDefinedType)],
    }
    return source.mapInPandas(functools.partial(_assign_frames, spec=spec),
                              T.StructType(schema_fields))


def _quoted(name):
    """A column reference that takes `name` literally (dots and all)."""
    return "`" + name.replace("`", "``") + "`"


def _field(fields, name):
    if name not in fields:
        raise ValueError(f"no column {name!r} in the DataFrame; its columns are {list(fields)}.")
    return fields[name]


def _array_kind(field, T):
    """"array" or "vector", or a ValueError naming the column's type."""
    data_type = field.dataType
    if isinstance(data_type, T.ArrayType) \
            and type(data_type.elementType).__name__ in _NUMERIC_TYPES:
        return "array"
    if isinstance(data_type, T.UserDefinedType) and type(data_type).__name__ == "VectorUDT":
        return "vector"
    raise ValueError(
        f"features column {field.name!r} has type {data_type.simpleString()}; it must be a "
        f"numeric array (array<float>, array<double>, ...) or a Spark ML vector, or pass a "
        f"list of numeric column names."
    )


def _sample_shape(assigner):
    """The model's sample shape, from the ONNX input (the metadata's where a dimension is
    symbolic); the two must agree."""
    dims = assigner._session.get_inputs()[0].shape[1:]
    shape = tuple(int(d) if isinstance(d, numbers.Integral) else m
                  for d, m in zip(dims, assigner.sample_shape))
    if len(dims) != len(assigner.sample_shape) or shape != tuple(assigner.sample_shape):
        raise ValueError(
            f"{assigner.path} takes samples of shape {tuple(dims)} but its metadata says "
            f"{tuple(assigner.sample_shape)}."
        )
    return shape


def _resolve_model(onnx_path):
    """The model file: `onnx_path` if it exists here, else the file of that name shipped
    with `spark-submit --files` or `SparkContext.addFile` (`pyspark.SparkFiles.get`)."""
    if not isinstance(onnx_path, (str, os.PathLike)):
        raise TypeError(f"onnx_path must be a path, got {type(onnx_path).__name__}.")
    path = Path(onnx_path)
    if path.is_file():
        return path
    shipped = None
    try:
        from pyspark import SparkFiles

        shipped = Path(SparkFiles.get(path.name))
    except (AssertionError, AttributeError, ImportError):
        pass  # no SparkContext here (a Spark Connect client, plain Python)
    if shipped is not None and shipped.is_file():
        if not shipped.with_name(shipped.name + METADATA_SUFFIX).is_file():
            raise FileNotFoundError(
                f"{shipped} was shipped without its metadata: ship "
                f"{path.name + METADATA_SUFFIX} too (spark-submit --files "
                f"{path.name},{path.name + METADATA_SUFFIX})."
            )
        return shipped
    raise FileNotFoundError(
        f"No such ONNX file: {onnx_path} (not in SparkFiles either"
        f"{': ' + str(shipped) if shipped is not None else ''}). On a cluster, ship it and "
        f"its metadata with spark-submit --files {path.name},{path.name + METADATA_SUFFIX} "
        f"or SparkContext.addFile."
    )


def _cached_assigner(path, batch_size, intra_op_threads, verify_checksum):
    """This process's `ClusterAssigner` for the model, created on first use."""
    from keras_deepclust.serving.assigner import ClusterAssigner

    key = (path, batch_size, intra_op_threads, verify_checksum)
    if key not in _ASSIGNERS:
        if len(_ASSIGNERS) >= _CACHE_SIZE:
            del _ASSIGNERS[next(iter(_ASSIGNERS))]  # the oldest
        _ASSIGNERS[key] = ClusterAssigner(_resolve_model(path), batch_size=batch_size,
                                          intra_op_threads=intra_op_threads,
                                          verify_checksum=verify_checksum)
    return _ASSIGNERS[key]


def _rebatch(frames, batch_size):
    """Regroups an iterator of pandas DataFrames into DataFrames of `batch_size` rows
    (the last one shorter)."""
    import pandas as pd

    pending, n = [], 0
    for frame in frames:
        start = 0
        while start < len(frame):
            part = frame.iloc[start:start + batch_size - n]
            start += len(part)
            pending.append(part)
            n += len(part)
            if n == batch_size:
                yield pending[0] if len(pending) == 1 else pd.concat(pending)
                pending, n = [], 0
    if pending:
        yield pending[0] if len(pending) == 1 else pd.concat(pending)


def _feature_matrix(frame, spec):
    """`(n, width)` numeric features of a pandas batch (float64 for columns of doubles),
    or a ValueError naming the column."""
    features, width, n = spec["features"], spec["width"], len(frame)
    if isinstance(features, str):
        name = spec["features_name"]
        column = frame[features]
        nulls = int(column.isna().sum())
        if nulls:
            raise ValueError(f"features column {name!r} is null in {nulls} row(s) of a batch "
                             f"of {n}.")
        values = column.to_numpy()
        lengths = np.fromiter((len(v) for v in values), dtype=np.int64, count=n)
        wrong = lengths != width
        if wrong.any():
            raise ValueError(
                f"features column {name!r} holds {int(lengths[wrong][0])} values in "
                f"{int(wrong.sum())} row(s) of a batch of {n}, but the model takes {width} "
                f"values per row."
            )
        # As stored (float64 for array<double>): the assigner refuses values beyond its
        # float32 input as too large for the model, which a cast here would make inf.
        x = np.concatenate(values).reshape(n, width)
        bad = ~np.isfinite(x).all(axis=1)
        if bad.any():
            raise ValueError(f"features column {name!r} holds NaN, infinite or null values "
                             f"in {int(bad.sum())} row(s) of a batch of {n}.")
        return x
    x = frame[features].to_numpy(dtype=np.float64)  # nulls become NaN
    finite = np.isfinite(x)
    if not finite.all():
        columns = np.flatnonzero(~finite.all(axis=0))
        raise ValueError(
            f"feature column {features[columns[0]]!r} holds null, NaN or infinite values in "
            f"{int((~finite[:, columns[0]]).sum())} row(s) of a batch of {n}"
            f"{f' (and {len(columns) - 1} more column(s) do)' if len(columns) > 1 else ''}."
        )
    return x


def _features_description(spec):
    """How error messages name the features: their column, or the feature columns."""
    if spec["features_name"] is not None:
        return f"features column {spec['features_name']!r}"
    return f"feature columns {spec['features']}"


def _from_udt_fields(udt, value):
    """The Python object of a user-defined type, from the dict of its fields that
    mapInPandas gives (anything else is left alone)."""
    return udt.deserialize(tuple(value.values())) if isinstance(value, dict) else value


def _assign_frames(frames, spec):
    """The `mapInPandas` function, run on the executors."""
    assigner = _cached_assigner(spec["path"], spec["batch_size"], spec["intra_op_threads"],
                                spec["verify_checksum"])
    for frame in _rebatch(frames, spec["batch_size"]):
        x = _feature_matrix(frame, spec)
        # Flat rows of an image model are reshaped there.
        outputs = assigner.assign(x, name=_features_description(spec))
        new = {spec["output_col"]: outputs["cluster"].astype(np.int32, copy=False)}
        if spec["probabilities_col"] is not None:
            new[spec["probabilities_col"]] = list(outputs["probabilities"])
        if spec["embedding_col"] is not None:
            new[spec["embedding_col"]] = list(outputs["embedding"].astype(np.float32,
                                                                            copy=False))
        frame = frame.reset_index(drop=True)
        if spec["drop"]:
            frame = frame.drop(columns=spec["drop"])
        for name, udt in spec["udt_columns"]:
            new[name] = [_from_udt_fields(udt, value) for value in frame[name]]
        yield frame.assign(**new)
