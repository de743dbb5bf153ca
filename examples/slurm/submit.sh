#!/bin/sh
# Features of a folder of galaxy images in a SLURM job array, then one dependent job that clusters
# them and writes the report. Usage:
#
#   examples/slurm/submit.sh IMAGES_DIR WORK_DIR SHARDS [RUN OPTIONS...]
#
# e.g. examples/slurm/submit.sh /data/cutouts /scratch/sdss 50 --pca 20 --method kmeans:k=10
# (without RUN OPTIONS: --pca 20, k-means 10, affinity propagation 0.8 and Ward 32).
# The program is `sdss-clustering` on the PATH, or $SDSS_CLUSTERING.
#
# Every task of the array computes one contiguous slice of the sorted images
# (`features --shard`, taken from SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT) into
# WORK_DIR/parts; the second job starts only when all of them succeeded (--dependency=afterok),
# checks that the parts cover every image exactly once and runs the rest of the pipeline on them.
# Resubmitting after a failure recomputes only the shards whose part is missing or damaged.
set -eu
images=$1
work=$2
shards=$3
shift 3
here=$(dirname "$0")
mkdir -p "$work/logs"
array=$(sbatch --parsable --array=0-$((shards - 1)) --output="$work/logs/features-%a.out" \
    "$here/features.sbatch" "$images" "$work/parts")
echo "features: job array $array ($shards tasks)"
cluster=$(sbatch --parsable --dependency=afterok:"$array" --output="$work/logs/cluster.out" \
    "$here/cluster.sbatch" "$images" "$work" "$@")
echo "clustering and report: job $cluster (after $array)"
