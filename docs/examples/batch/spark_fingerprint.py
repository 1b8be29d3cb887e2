"""Spark: fingerprint a manifest in 64 shards with RDD.pipe, then list the parts.

    spark-submit --files docs/examples/batch/spark-pipe-shard.sh \
        docs/examples/batch/spark_fingerprint.py /data/manifests/fma.csv /data/parts 64

Every executor needs the `trainspotter` binary on its PATH and the manifest, audio and
parts folder on a shared file system. Each partition holds one shard index.
"""
import json
import sys

from pyspark.sql import SparkSession

manifest, parts, shards = sys.argv[1], sys.argv[2], int(sys.argv[3])
spark = SparkSession.builder.appName("trainspotter-fingerprint").getOrCreate()
sc = spark.sparkContext
env = {"MANIFEST": manifest, "PARTS": parts, "SHARDS": str(shards), "JOBS": "4"}
results = (
    sc.parallelize([str(i) for i in range(shards)], numSlices=shards)
    .pipe("./spark-pipe-shard.sh", env=env)  # shipped by --files
    .map(json.loads)
    .collect()
)
failed = [r for r in results if r["exit"] != 0]
for r in failed:
    print(f"shard {r['shard']} failed permanently (exit {r['exit']})", file=sys.stderr)
print(f"{len(results) - len(failed)} of {shards} parts done under {parts}")
sys.exit(1 if failed else 0)
