"""Exact k-nearest-neighbour search in Euclidean feature space, in blocks of matrix multiplies.

Candidates are ranked by ||b||^2 - 2 a.b, the squared distance less the query's constant ||a||^2,
which is one matrix multiply per block of queries. A few extra candidates are kept, their
distances are recomputed from the differences, and the nearest `count` of them are returned. So
exact duplicates get a distance of exactly 0 instead of the expansion's rounding error, and
near-ties are ordered correctly.
"""

from __future__ import annotations

import numpy as np
import torch

BLOCK_BYTES = 256 * 2**20  # memory for one block of the distance matrix or of the recomputed differences
EXTRA_CANDIDATES = 8


def nearest_neighbours(
    queries: np.ndarray,
    reference: np.ndarray,
    count: int,
    exclude_self: bool = False,
    device: torch.device | str = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Return the distances (float64) and indices (int64) of each query's `count` nearest reference points, nearest first.

    With `exclude_self`, `queries` must be `reference` itself and row i never lists point i,
    even when another point lies at distance 0.
    """
    if exclude_self and queries.shape != reference.shape:
        raise ValueError("exclude_self needs the queries to be the reference set itself")
    available = len(reference) - (1 if exclude_self else 0)
    if count > available:
        raise ValueError(f"asked for {count} neighbours but the reference set offers only {available}")
    candidate_count = min(available, count + EXTRA_CANDIDATES)
    dimension = reference.shape[1]
    reference_tensor = torch.as_tensor(reference, dtype=torch.float32, device=device)
    reference_sq = reference_tensor.pow(2).sum(dim=1)
    block = max(1, BLOCK_BYTES // (4 * len(reference)))
    sub_block = max(1, BLOCK_BYTES // (4 * candidate_count * dimension))
    all_distances = np.empty((len(queries), count), dtype=np.float64)
    all_indices = np.empty((len(queries), count), dtype=np.int64)
    for start in range(0, len(queries), block):
        query_block = torch.as_tensor(queries[start : start + block], dtype=torch.float32, device=device)
        # -> [b, n] squared distances less ||a||^2, up to rounding
        ranking = torch.addmm(reference_sq.unsqueeze(0), query_block, reference_tensor.T, alpha=-2.0)
        if exclude_self:
            rows = torch.arange(len(query_block), device=device)
            ranking[rows, rows + start] = float("inf")
        candidates = torch.topk(ranking, candidate_count, dim=1, largest=False, sorted=False).indices
        del ranking
        for offset in range(0, len(query_block), sub_block):
            rows = slice(offset, offset + sub_block)
            row_candidates = candidates[rows]
            # -> [s, candidate_count] distances recomputed from the differences (exactly 0 for duplicates)
            differences = query_block[rows].unsqueeze(1) - reference_tensor[row_candidates]
            exact = differences.norm(dim=2).double()
            order = torch.argsort(exact, dim=1, stable=True)[:, :count]
            first = start + offset
            all_distances[first : first + len(row_candidates)] = torch.gather(exact, 1, order).cpu().numpy()
            all_indices[first : first + len(row_candidates)] = torch.gather(row_candidates, 1, order).cpu().numpy()
    return all_distances, all_indices
