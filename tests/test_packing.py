"""Bin packing on small hand-checked cases: best fit, its lower bound, and the first-fit baseline."""

from __future__ import annotations

import pytest

from modelplane.packing import first_fit, lower_bound, pack

GPU = "nvidia.com/gpu"


@pytest.mark.parametrize(
    ("groups", "max_pods", "bins"),
    [
        ([(GPU, 5, 2), (GPU, 3, 2)], 110, 2),  # 5+3, 5+3
        ([(GPU, 4, 3)], 110, 2),  # 4+4, 4
        ([(GPU, 3, 3), (GPU, 2, 1)], 110, 2),  # 3+3+2, 3
        ([(GPU, 1, 10)], 3, 4),  # the pod limit binds: 3+3+3+1 pods
        ([(GPU, 8, 2), (GPU, 1, 0)], 110, 2),  # zero replicas take nothing
        ([], 110, 0),
    ],
    ids=["pairs", "halves", "fill-gap", "pod-limit", "zero-count", "empty"],
)
def test_pack_hand_checked(groups: list[tuple[str, int, int]], max_pods: int, bins: int) -> None:
    assert pack({GPU: 8}, max_pods, groups)[0] == bins


def test_pack_reports_the_room_left_in_each_bin() -> None:
    _, states = pack({GPU: 8}, 110, [(GPU, 5, 2), (GPU, 3, 1)])
    assert states == [({GPU: 0, "pods": 108}, 1), ({GPU: 3, "pods": 109}, 1)]


def test_pack_keeps_resources_of_a_mig_node_apart() -> None:
    node = {"nvidia.com/mig-1g.10gb": 4, "nvidia.com/mig-3g.40gb": 1}
    groups = [("nvidia.com/mig-1g.10gb", 1, 8), ("nvidia.com/mig-3g.40gb", 1, 1)]
    assert pack(node, 110, groups)[0] == 2


def test_pack_refuses_an_item_larger_than_a_bin() -> None:
    with pytest.raises(ValueError, match=r"an item of 9 nvidia\.com/gpu does not fit a bin of 8"):
        pack({GPU: 8}, 110, [(GPU, 9, 1)])


def test_lower_bound_is_units_over_capacity_or_pods_over_limit() -> None:
    assert lower_bound({GPU: 8}, 110, [(GPU, 5, 2), (GPU, 3, 2)]) == 2
    assert lower_bound({GPU: 8}, 3, [(GPU, 1, 10)]) == 4


def test_first_fit_in_declaration_order_can_be_worse_than_the_plan() -> None:
    items = [(GPU, 3), (GPU, 3), (GPU, 5), (GPU, 5)]
    assert first_fit({GPU: 8}, 110, items) == 3
    assert pack({GPU: 8}, 110, [(GPU, 3, 2), (GPU, 5, 2)])[0] == 2
