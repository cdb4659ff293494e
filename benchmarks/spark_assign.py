"""Rows per second of Spark batch assignment (`keras_deepclust.serving.spark`, local
mode) against one plain `ClusterAssigner` on the same rows, with a check that every
label agrees.

    python benchmarks/spark_assign.py --rows 100000
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from results_io import write_results


def export_model(folder, features):
    from keras_deepclust.export import export_onnx
    from keras_deepclust.models import DEC

    import numpy as np

    x = np.random.default_rng(0).uniform(0, 1, (2000, features)).astype("float32")
    model = DEC(n_clusters=10, random_state=0)  # the SAE d-500-500-2000-10
    model.pretrain(x, epochs=1, verbose=0)
    model.initialize_centroids(x)
    path = Path(folder) / "dec.onnx"
    export_onnx(model, path)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    os.environ["PYSPARK_PYTHON"] = os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable

    import numpy as np
    import pandas as pd
    from pyspark.sql import SparkSession

    from keras_deepclust.serving import ClusterAssigner
    from keras_deepclust.serving.spark import assign_clusters

    scratch = tempfile.mkdtemp()
    os.chdir(scratch)  # Spark's Python workers start in the driver's working directory
    model = export_model(scratch, args.features)
    x = np.random.default_rng(1).uniform(0, 1, (args.rows, args.features)).astype("float32")
    spark = (SparkSession.builder.master(args.master).config("spark.ui.enabled", "false")
             .config("spark.driver.memory", "2g").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    frame = spark.createDataFrame(pd.DataFrame({"id": np.arange(args.rows), "features": list(x)}),
                                  "id long, features array<float>").repartition(4).cache()
    frame.count()
    results = {"rows": args.rows, "features": args.features, "master": args.master,
               "batch_size": args.batch_size, "assigner": [], "spark": []}
    assigner = ClusterAssigner(model, batch_size=args.batch_size, intra_op_threads=1)
    reference = assigner.predict_labels(x[: args.batch_size])
    for _ in range(args.repeats):  # alternated, so both see the same machine load
        start = time.perf_counter()
        reference = assigner.predict_labels(x)
        results["assigner"].append(args.rows / (time.perf_counter() - start))
        start = time.perf_counter()
        assign_clusters(frame, model, batch_size=args.batch_size, check_first_row=False) \
            .select("cluster").write.format("noop").mode("overwrite").save()
        results["spark"].append(args.rows / (time.perf_counter() - start))
    labels = (assign_clusters(frame, model).select("id", "cluster").toPandas()
              .sort_values("id")["cluster"].to_numpy())
    results["mismatches"] = int((labels != reference).sum())
    spark.stop()

    command = "python benchmarks/spark_assign.py " + " ".join(argv if argv is not None else sys.argv[1:])
    rows = [f"| one `ClusterAssigner` (1 thread) | {np.mean(results['assigner']):,.0f} ± "
            f"{np.std(results['assigner']):,.0f} |",
            f"| Spark `{args.master}`, `assign_clusters` | {np.mean(results['spark']):,.0f} ± "
            f"{np.std(results['spark']):,.0f} |"]
    text = (f"Command: `{command}`\n\n{args.rows:,} rows x {args.features} features, DEC SAE "
            f"{args.features}-500-500-2000-10, K = 10, batch {args.batch_size}, "
            f"{args.repeats} alternated runs (mean ± std); label mismatches: "
            f"{results['mismatches']}.\n\n| path | rows/s |\n|---|---|\n" + "\n".join(rows) + "\n")
    write_results(args.out, "spark_assign", text, results)
    print(text)


if __name__ == "__main__":
    main()
