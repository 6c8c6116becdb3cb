"""Bin packing of identical items onto identical bins: how many nodes a set of pods needs.

Generic over resources (GPUs, time-sliced shares, MIG devices, memory) and a pod limit per
bin; ``modelplane.capacity`` uses it to place models on GPU pools and mesh models in runtime
pods. Best-fit decreasing over item groups (``pack``), the bound no packing can beat
(``lower_bound``), and the naive first fit in declaration order that ``bench/run.py`` compares
against (``first_fit``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable


def pack(
    capacity: dict[str, int], max_pods: int, groups: Iterable[tuple[str, int, int]]
) -> tuple[int, list[tuple[dict[str, int], int]]]:
    """Bins (nodes) needed for groups of identical items: best-fit decreasing.

    ``capacity`` is what one bin holds per resource, ``max_pods`` how many items a bin takes
    at most, ``groups`` are ``(resource, units, count)``. Items are placed largest first
    (by the share of a bin they take); each goes to the open bin with the least room left
    that still fits it. Bins are tracked by state (room per resource, pods left) with a
    count per state, so work grows with distinct item sizes, not with the number of items.

    Returns the number of bins and the final states ``[(room, count)]``.
    """
    resources = sorted(capacity)
    index = {r: i for i, r in enumerate(resources)}
    merged: dict[tuple[str, int], int] = defaultdict(int)
    for resource, units, count in groups:
        if count > 0 and units > 0:
            merged[(resource, units)] += count
    order = sorted(merged, key=lambda g: (-g[1] / capacity[g[0]], g[0], -g[1]))
    full = (*(capacity[r] for r in resources), max_pods)
    states: dict[tuple[int, ...], int] = {}
    bins = 0
    for resource, units in order:
        n = merged[(resource, units)]
        slot = index[resource]
        while n > 0:
            fitting = [s for s in states if s[slot] >= units and s[-1] >= 1]
            if fitting:
                state = min(fitting, key=lambda s: (s[slot], s[-1], s))
                available = states[state]
            else:
                if units > capacity[resource]:
                    raise ValueError(
                        f"an item of {units} {resource} does not fit a bin of {capacity[resource]}"
                    )
                state = full
                available = math.ceil(n / max(1, min(capacity[resource] // units, max_pods)))
                bins += available
                states[state] = states.get(state, 0) + available
            per_bin = min(state[slot] // units, state[-1])
            used_bins = min(available, math.ceil(n / per_bin))
            placed_full = min(used_bins, n // per_bin)
            remainder = n - placed_full * per_bin if used_bins > placed_full else 0
            states[state] -= used_bins
            if states[state] == 0:
                del states[state]
            if placed_full:
                after = _take(state, slot, units * per_bin, per_bin)
                states[after] = states.get(after, 0) + placed_full
            if remainder:
                after = _take(state, slot, units * remainder, remainder)
                states[after] = states.get(after, 0) + 1
            n -= placed_full * per_bin + remainder
    return bins, [
        ({r: s[index[r]] for r in resources} | {"pods": s[-1]}, c) for s, c in sorted(states.items())
    ]


def _take(state: tuple[int, ...], slot: int, units: int, pods: int) -> tuple[int, ...]:
    values = list(state)
    values[slot] -= units
    values[-1] -= pods
    return tuple(values)


def lower_bound(capacity: dict[str, int], max_pods: int, groups: Iterable[tuple[str, int, int]]) -> int:
    """Fewest bins any packing needs: units needed over units per bin, per resource and for pods."""
    units: dict[str, int] = defaultdict(int)
    pods = 0
    for resource, size, count in groups:
        units[resource] += size * count
        pods += count
    bound = math.ceil(pods / max_pods) if pods else 0
    for resource, total in units.items():
        bound = max(bound, math.ceil(total / capacity[resource]))
    return bound


def first_fit(capacity: dict[str, int], max_pods: int, items: Iterable[tuple[str, int]]) -> int:
    """Bins first-fit needs, taking items in the order given (the naive baseline).

    A segment tree per resource over the bins finds the first bin with room in O(log bins).
    """
    resources = sorted(capacity)
    size = 1
    trees: dict[str, list[int]] = {r: [-1] * 2 for r in resources}
    pods: list[int] = []
    bins = 0

    def update(resource: str, position: int, value: int) -> None:
        tree = trees[resource]
        i = position + size
        tree[i] = value
        i //= 2
        while i:
            tree[i] = max(tree[2 * i], tree[2 * i + 1])
            i //= 2

    def first(resource: str, need: int) -> int:
        tree = trees[resource]
        if tree[1] < need:
            return -1
        i = 1
        while i < size:
            i = 2 * i if tree[2 * i] >= need else 2 * i + 1
        return i - size

    for resource, units in items:
        position = first(resource, units)
        if position < 0:
            if bins == size:
                size *= 2
                for r in resources:
                    old = trees[r]
                    leaves = old[size // 2 : size] + [-1] * (size // 2)
                    tree = [-1] * size + leaves
                    for i in range(size - 1, 0, -1):
                        tree[i] = max(tree[2 * i], tree[2 * i + 1])
                    trees[r] = tree
            position = bins
            bins += 1
            pods.append(max_pods)
            for r in resources:
                update(r, position, capacity[r])
        pods[position] -= 1
        room = trees[resource][position + size] - units
        if pods[position] == 0:
            for r in resources:
                update(r, position, -1)
        else:
            update(resource, position, room)
    return bins
