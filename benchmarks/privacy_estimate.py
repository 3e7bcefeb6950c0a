"""Time the privacy estimate at full size: n artificial points of dimension d and T pairs.

    python -m benchmarks.privacy_estimate [--n 60000] [--dimension 2048] [--pairs 1000]
                                         [--neighbours 10] [--naive-rows 2000]

Prints the fp32 matrix-multiply rate of this machine, the time that the distance arithmetic of
an exact index needs at that rate (2 n^2 d floating-point operations), the index build time, the
time for the T pairs after the index, the naive recomputation's time extrapolated from a subset,
and the peak resident memory. The features are random Gaussian clusters; the timings do not
depend on the values.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

from privgen.neighbours import nearest_neighbours
from privgen.privacy import RemovalIndex, distance_floor


def matmul_rate(size: int = 4096, repeats: int = 5) -> float:
    """Return the best fp32 matrix-multiply rate in FLOP/s over `repeats` size x size products."""
    left, right = torch.randn(size, size), torch.randn(size, size)
    left @ right
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        left @ right
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best


def naive_seconds_per_pair(features: np.ndarray, removed: np.ndarray, rows: int) -> float:
    """Time the naive recomputation of one pair's nu distances on `rows` points, scaled to all n points.

    The naive estimate searches every point's nearest neighbour in A without the removed points,
    which is a new exact search over n - k points for each pair.
    """
    keep = np.setdiff1d(np.arange(len(features)), removed)
    started = time.perf_counter()
    nearest_neighbours(features[:rows], features[keep], 2)
    return (time.perf_counter() - started) * len(features) / rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=60_000, help="artificial points (default 60000)")
    parser.add_argument("--dimension", type=int, default=2048, help="feature dimension (default 2048)")
    parser.add_argument("--pairs", type=int, default=1000, help="real examples T (default 1000)")
    parser.add_argument("--neighbours", type=int, default=10, help="artificial points removed per pair, k (default 10)")
    parser.add_argument("--naive-rows", type=int, default=2000, help="points timed for the naive extrapolation (default 2000)")
    arguments = parser.parse_args()
    n, dimension, pairs = arguments.n, arguments.dimension, arguments.pairs

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(100, dimension)).astype(np.float32)
    artificial = centres[rng.integers(0, 100, n)] + rng.normal(size=(n, dimension)).astype(np.float32)
    real = centres[rng.integers(0, 100, pairs)] + rng.normal(size=(pairs, dimension)).astype(np.float32)

    rate = matmul_rate()
    arithmetic_seconds = 2 * n**2 * dimension / rate
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; n = {n}, d = {dimension}, T = {pairs}, k = {arguments.neighbours}")
    print(f"fp32 matmul rate: {rate / 1e9:.0f} GFLOP/s; distance arithmetic 2 n^2 d at that rate: {arithmetic_seconds:.1f} s")

    started = time.perf_counter()
    index = RemovalIndex(artificial, kl_k=1, max_removed=arguments.neighbours)
    build_seconds = time.perf_counter() - started
    print(f"index build: {build_seconds:.1f} s ({build_seconds / arithmetic_seconds:.2f} x the arithmetic time)")

    started = time.perf_counter()
    removal_lists = nearest_neighbours(real, artificial, arguments.neighbours)[1]
    query_seconds = time.perf_counter() - started
    started = time.perf_counter()
    losses = np.array([index.pair_loss(row) for row in removal_lists])
    pair_seconds = time.perf_counter() - started
    print(f"pairs: {pair_seconds:.2f} s for {pairs} pairs, plus {query_seconds:.2f} s to find each real example's k nearest artificial points")
    print(f"mean pair loss {losses.mean():.4g} (distance floor {distance_floor(index.distances[:, 0]):.3g})")

    naive_pair = naive_seconds_per_pair(artificial, removal_lists[0], min(arguments.naive_rows, n))
    naive_total = naive_pair * pairs
    fast_total = build_seconds + query_seconds + pair_seconds
    print(f"naive recomputation (extrapolated from {min(arguments.naive_rows, n)} points of one pair): "
          f"{naive_pair:.1f} s per pair, {naive_total / 3600:.1f} h for {pairs} pairs")  # fmt: skip
    print(f"speed-up over naive: {naive_total / fast_total:.0f} x (index, queries and pairs against the extrapolated naive total)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak resident memory: {peak:.2f} GiB")


if __name__ == "__main__":
    main()
