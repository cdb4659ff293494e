import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("pyspark")
pytest.importorskip("pyarrow")

from keras_deepclust.serving import ClusterAssigner
from keras_deepclust.serving.spark import _rebatch, assign_clusters


N_ROWS = 300


@pytest.fixture(scope="module")
def exported(dcec_artifacts):
    """The suite's small DCEC assigner on 8x8x1 images: Spark gets flat rows of 64 values."""
    _, x, folder = dcec_artifacts
    return x, folder / "m.onnx"


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    """One local[2] session for the module. The Python workers must be this interpreter
    (the system python3 lacks pyarrow) and must not start inside the repository root, where
    the source folder keras_deepclust/ (without serving/) would shadow the installed
    package: the session lives in a temporary working directory."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Spark needs Java (17+)")
    from pyspark.sql import SparkSession

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYSPARK_PYTHON", sys.executable)
        mp.setenv("PYSPARK_DRIVER_PYTHON", sys.executable)
        mp.chdir(tmp_path_factory.mktemp("spark-cwd"))
        session = (
            SparkSession.builder.master("local[2]")
            .appName("keras-deepclust-tests")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "3")
            .config("spark.default.parallelism", "3")
            # Arrow batches of 70 rows, assigned in batches of 64: batches are split and joined.
            .config("spark.sql.execution.arrow.maxRecordsPerBatch", "70")
            .config("spark.driver.memory", "1g")
            .getOrCreate()
        )
        session.sparkContext.setLogLevel("ERROR")
        try:
            yield session
        finally:
            session.stop()


@pytest.fixture(scope="module")
def frame(spark, exported):
    """`id` and `features` (array<float>, 64 values) over 3 partitions of ~100 rows."""
    x, _ = exported
    flat = x.reshape(N_ROWS, -1)
    rows = [(i, flat[i].tolist()) for i in range(N_ROWS)]
    return spark.createDataFrame(rows, "id long, features array<float>").repartition(3)


def by_id(df, *columns):
    rows = sorted(df.select("id", *columns).collect(), key=lambda r: r["id"])
    return np.array([r["id"] for r in rows]), [np.array([r[c] for r in rows]) for c in columns]


def test_labels_and_probabilities_match_the_assigner(exported, frame):
    x, path = exported
    assert frame.rdd.getNumPartitions() == 3
    result = assign_clusters(frame, path, batch_size=64, probabilities_col="probabilities",
                             embedding_col="embedding")
    assert result.columns == ["id", "features", "cluster", "probabilities", "embedding"]
    types = dict(result.dtypes)
    assert types["cluster"] == "int" and types["probabilities"] == "array<float>"
    ids, (labels, probabilities, embedding) = by_id(result, "cluster", "probabilities",
                                                    "embedding")
    np.testing.assert_array_equal(ids, np.arange(N_ROWS))
    expected = ClusterAssigner(path).assign(x)
    np.testing.assert_array_equal(labels, expected["cluster"])
    np.testing.assert_allclose(probabilities, expected["probabilities"], atol=1e-6)
    np.testing.assert_allclose(embedding, expected["embedding"], atol=1e-5)


def test_list_of_columns_and_vector_and_double_inputs(spark, exported):
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import functions as F

    x, path = exported
    flat = x[:80].reshape(80, -1).astype(np.float64)
    names = [f"p{i}" for i in range(64)]
    df = spark.createDataFrame([(i, *map(float, flat[i])) for i in range(80)], ["id", *names])
    df = df.withColumn("doubles", F.array(*names)).withColumn("vec", array_to_vector("doubles"))
    expected = ClusterAssigner(path).predict_labels(x[:80])
    # One job each: chained in one plan, every task would need a Python worker per stage.
    by_columns = assign_clusters(df, path, features_col=names, batch_size=50, output_col="k")
    assert by_columns.columns == ["id", *names, "doubles", "vec", "k"]
    np.testing.assert_array_equal(by_id(by_columns, "k")[1][0], expected)
    by_vector = assign_clusters(df, path, features_col="vec")
    assert dict(by_vector.dtypes)["vec"] == "vector"  # passed through as a vector
    np.testing.assert_array_equal(by_id(by_vector, "vec", "cluster")[1][1], expected)
    by_doubles = assign_clusters(df.select("id", "doubles"), path, features_col="doubles")
    np.testing.assert_array_equal(by_id(by_doubles, "cluster")[1][0], expected)


def test_model_shipped_with_add_file(spark, exported, frame, tmp_path):
    x, path = exported
    for name in ("shipped.onnx", "shipped.onnx.metadata.json"):
        source = path.with_name(name.replace("shipped", "m"))
        shutil.copy(source, tmp_path / name)
        spark.sparkContext.addFile(str(tmp_path / name))
    # Not at this path anywhere: the driver and the executors find it in SparkFiles.
    result = assign_clusters(frame.limit(40), "/nonexistent/shipped.onnx")
    ids, (labels,) = by_id(result, "cluster")
    np.testing.assert_array_equal(labels, ClusterAssigner(path).predict_labels(x[ids]))

    def resolve(frames):  # the lookup as an executor makes it
        import pandas as pd
        from keras_deepclust.serving.spark import _resolve_model

        for _ in frames:
            yield pd.DataFrame({"path": [str(_resolve_model("/nonexistent/shipped.onnx"))]})

    found = spark.range(1).mapInPandas(resolve, "path string").first()["path"]
    assert os.path.basename(found) == "shipped.onnx" and found != str(tmp_path / "shipped.onnx")


def test_errors_at_the_entry_point(spark, exported, frame, tmp_path):
    _, path = exported
    with pytest.raises(FileNotFoundError, match="No such ONNX file: .*none.onnx"):
        assign_clusters(frame, tmp_path / "none.onnx")
    with pytest.raises(ValueError, match=r"no column 'pixels' in the DataFrame; its columns "
                                         r"are \['id', 'features'\]"):
        assign_clusters(frame, path, features_col="pixels")
    with pytest.raises(ValueError, match="column 'Cluster' already exists"):
        assign_clusters(frame.withColumnRenamed("id", "Cluster"), path)
    with pytest.raises(ValueError, match="column 'features' already exists"):
        assign_clusters(frame, path, probabilities_col="features")
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        assign_clusters(frame, path, batch_size=0)
    with pytest.raises(TypeError, match="must be a pyspark.sql.DataFrame, got ndarray"):
        assign_clusters(np.zeros((2, 64)), path)

    short = spark.createDataFrame([(0, [0.5] * 63)], "id long, features array<float>")
    with pytest.raises(ValueError, match=r"'features' holds 63 values in its first row but "
                                         r"the model takes 64 values per row \(samples of "
                                         r"shape \(8, 8, 1\)\)"):
        assign_clusters(short, path)
    with pytest.raises(ValueError, match="features_col lists 3 columns but the model takes 64"):
        assign_clusters(spark.createDataFrame([(1.0, 2.0, 3.0)], ["a", "b", "c"]), path,
                        features_col=["a", "b", "c"])
    with pytest.raises(ValueError, match="feature column 'b' has type string"):
        assign_clusters(spark.createDataFrame([(1.0, "x")], ["a", "b"]), path,
                        features_col=["a", "b"])
    with pytest.raises(ValueError, match="'id' has type bigint; it must be a numeric array"):
        assign_clusters(frame, path, features_col="id")


def test_bad_rows_fail_the_job_with_a_clear_message(spark, exported):
    from pyspark.errors import PythonException

    _, path = exported
    rows = [(0, [0.5] * 64), (1, [0.5] * 64), (2, [0.5] * 60)]
    df = spark.createDataFrame(rows, "id long, features array<float>").coalesce(1)
    with pytest.raises(PythonException, match="'features' holds 60 values in 1 row"):
        assign_clusters(df, path).collect()


def test_one_session_per_worker_process(spark, exported):
    import pandas as pd
    from keras_deepclust.serving import spark as spark_module

    _, path = exported
    key = (str(path.resolve()), 64, 1, True)

    def sessions(frames):
        for _ in frames:
            assigner = spark_module._cached_assigner(*key)
            yield pd.DataFrame({"pid": [os.getpid()], "session": [id(assigner._session)]})

    rows = spark.range(0, 8, numPartitions=8).mapInPandas(sessions, "pid long, session long")
    seen = {}
    for row in rows.collect():
        seen.setdefault(row["pid"], set()).add(row["session"])
    assert len(seen) < 8  # Spark reused its Python workers for the 8 tasks...
    assert all(len(ids) == 1 for ids in seen.values())  # ...and each kept its one session


def test_rebatch_splits_and_joins():
    import pandas as pd

    frames = [pd.DataFrame({"a": np.arange(start, stop)})
              for start, stop in [(0, 70), (70, 75), (75, 75), (75, 200)]]
    batches = list(_rebatch(iter(frames), 64))
    assert [len(b) for b in batches] == [64, 64, 64, 8]
    np.testing.assert_array_equal(np.concatenate([b["a"] for b in batches]), np.arange(200))


def test_import_stays_light(tmp_path):
    code = ("import sys, keras_deepclust.serving, keras_deepclust.serving.spark\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} "
            "& {'pyspark', 'pandas', 'pyarrow', 'tensorflow', 'keras'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=tmp_path)  # outside the repository
    assert result.stdout.strip() == "[]"
