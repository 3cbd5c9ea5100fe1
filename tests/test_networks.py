"""One test over every network: shapes, finite outputs, a gradient for every parameter."""

import pytest
import torch

from skmtl.nn import (
    AITM,
    DCN,
    ESMM,
    PLE,
    STAR,
    CrossNetwork,
    CrossStitch,
    FeatureBatch,
    MMoE,
    SharedBottom,
    StackedLinear,
)

CARDINALITIES = [5, 7, 3]
OUTPUTS = [1, 3, 1]  # binary, 3-class, regression
FUNNEL = [1, 1, 1]  # three binary stages

NETWORKS = {
    "mmoe": lambda: MMoE(CARDINALITIES, 4, OUTPUTS, n_experts=3, expert_hidden_sizes=(8, 6)),
    "one_gate": lambda: MMoE(CARDINALITIES, 4, OUTPUTS, n_experts=3, gating="shared"),
    "ple": lambda: PLE(CARDINALITIES, 4, OUTPUTS, n_levels=3),
    "cgc": lambda: PLE(CARDINALITIES, 4, OUTPUTS, n_levels=1, n_shared_experts=0),
    "dcn": lambda: DCN(CARDINALITIES, 4, OUTPUTS),
    "dcn_vector": lambda: DCN(CARDINALITIES, 4, OUTPUTS, cross_type="vector", structure="stacked"),
    "shared_bottom": lambda: SharedBottom(CARDINALITIES, 4, OUTPUTS, dropout=0.2),
    "cross_stitch": lambda: CrossStitch(
        CARDINALITIES, 4, OUTPUTS, column_hidden_sizes=(8, 6)
    ),
    "esmm": lambda: ESMM(CARDINALITIES, 4, FUNNEL),
    "aitm": lambda: AITM(
        CARDINALITIES, 4, FUNNEL, tower_hidden_sizes=(8, 6), dropout=0.1
    ),
    # Column 1 (cardinality 7) holds the domain: 5 known ones, unknown and missing.
    "star": lambda: STAR(CARDINALITIES, 4, OUTPUTS, domain_index=1, dropout=0.1),
}


def _inputs(n_rows):
    torch.manual_seed(0)
    categorical = torch.stack([torch.randint(0, c, (n_rows,)) for c in CARDINALITIES], 1)
    return FeatureBatch.from_arrays(categorical, torch.randn(n_rows, 4))


@pytest.mark.parametrize("name", sorted(NETWORKS))
@pytest.mark.parametrize("n_rows", [1, 17])
def test_network_shapes_and_gradients(name, n_rows):
    net = NETWORKS[name]()
    out = net(_inputs(n_rows))
    # A one-row batch keeps its batch axis.
    assert out.shape == (n_rows, sum(net.output_sizes))
    assert torch.isfinite(out).all()
    out.square().sum().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    if n_rows > 1 or "bottom" not in name:
        assert not missing, f"{name}: no gradient for {missing}"


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_shared_and_task_parameters_partition_the_network(name):
    net = NETWORKS[name]()
    shared, task = net.shared_parameters(), net.task_parameters()
    assert {id(p) for p in shared}.isdisjoint({id(p) for p in task})
    assert len(shared) + len(task) == len(list(net.parameters()))
    # A task's tower output depends only on its own slice of the tower weights.
    out = net(_inputs(5))
    out[:, 0].sum().backward()
    head = net.towers.head.weight.grad
    assert head[1:].abs().sum() == 0 and head[0].abs().sum() > 0


def test_mmoe_gates_are_distributions_and_shared_gating_is_one_gate():
    x = torch.randn(6, 20)
    per_task = MMoE([], 20, [1, 1], n_experts=4)
    batch = FeatureBatch.from_arrays(torch.zeros(6, 0, dtype=torch.long), x)
    gates = per_task.gate_weights(per_task.input(batch))
    assert gates.shape == (2, 6, 4)
    torch.testing.assert_close(gates.sum(-1), torch.ones(2, 6))
    assert not torch.allclose(gates[0], gates[1])
    shared = MMoE([], 20, [1, 1], n_experts=4, gating="shared")
    gates = shared.gate_weights(shared.input(batch))
    torch.testing.assert_close(gates[0], gates[1])


def test_ple_gates_select_own_and_shared_experts():
    net = PLE([], 5, [1, 1], n_levels=2, n_shared_experts=1, n_task_experts=2)
    batch = FeatureBatch.from_arrays(torch.zeros(3, 0, dtype=torch.long), torch.randn(3, 5))
    levels = net.gate_distributions(batch)
    (task_gates, shared_gate), (last_task_gates, last_shared) = levels
    assert task_gates.shape == (2, 3, 3)  # 2 own + 1 shared expert per task
    assert shared_gate.shape == (3, 5)  # all 2 * 2 + 1 experts
    assert last_shared is None  # no shared gate on the last level
    # Task 0 mixes experts 0, 1 (its own) and 4 (shared).
    assert net.levels[0].selected.tolist() == [[0, 1, 4], [2, 3, 4]]


def test_stacked_linear_matches_separate_linear_layers():
    layer = StackedLinear(3, 4, 2)
    x = torch.randn(5, 4)
    expected = torch.stack([x @ layer.weight[g] + layer.bias[g] for g in range(3)])
    torch.testing.assert_close(layer(x), expected)
    x3 = torch.randn(3, 5, 4)
    expected = torch.stack([x3[g] @ layer.weight[g] + layer.bias[g] for g in range(3)])
    torch.testing.assert_close(layer(x3), expected)


@pytest.mark.parametrize("cross_type", ["vector", "matrix"])
def test_cross_layer_formula(cross_type):
    net = CrossNetwork(4, 1, cross_type)
    x0 = torch.randn(3, 4)
    layer = net.layers[0]
    if cross_type == "vector":
        expected = x0 * (x0 @ layer.weight.T) + net.biases[0] + x0
    else:
        expected = x0 * (x0 @ layer.weight.T + layer.bias) + x0
    torch.testing.assert_close(net(x0), expected)
