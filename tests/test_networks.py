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
    ExtractionLevel,
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
    (task_gates, shared_gate), (_, last_shared) = levels
    assert task_gates.shape == (2, 3, 3)  # 2 own + 1 shared expert per task
    assert shared_gate.shape == (3, 5)  # all 2 * 2 + 1 experts
    assert last_shared is None  # no shared gate on the last level
    # Task 0 mixes experts 0, 1 (its own) and 4 (shared), task 1 experts 2, 3, 4.
    placement = net.levels[0].placement
    assert placement.argmax(-1).tolist() == [[0, 1, 4], [2, 3, 4]]
    assert placement.sum(-1).eq(1).all() and placement.sum().item() == 6


def _reference_level(level, inputs):
    """An extraction level written out: one expert, one gate at a time, by index."""
    n_tasks, n_own = level.n_tasks, level.n_task_experts
    groups = [inputs] * (n_tasks + 1) if inputs.dim() == 2 else list(inputs)
    group_of = [k for k in range(n_tasks) for _ in range(n_own)]
    group_of += [n_tasks] * level.n_shared_experts
    experts = []
    for e, group in enumerate(group_of):
        h = groups[group]
        for layer in level.experts.layers:
            h = torch.relu(h @ layer.weight[e] + layer.bias[e])
        experts.append(h)
    outputs, task_gates = [], []
    for k in range(n_tasks):
        logits = groups[k] @ level.task_gates.weight[k] + level.task_gates.bias[k]
        gate = torch.softmax(logits, dim=-1)
        chosen = experts[k * n_own : (k + 1) * n_own] + experts[n_tasks * n_own :]
        outputs.append(sum(gate[:, [j]] * h for j, h in enumerate(chosen)))
        task_gates.append(gate)
    shared_gate = None
    if level.shared_gate is not None:
        shared_gate = torch.softmax(level.shared_gate(groups[-1]), dim=-1)
        outputs.append(sum(shared_gate[:, [e]] * h for e, h in enumerate(experts)))
    return torch.stack(outputs), torch.stack(task_gates), shared_gate


@pytest.mark.parametrize(
    "n_tasks, n_shared, n_own, sizes, last, grouped",
    [
        (2, 2, 2, (8,), False, False),  # first level: one input for all groups
        (2, 2, 2, (8,), True, True),  # a later, last level
        (3, 1, 3, (6, 5), False, True),  # two expert layers, more own than shared
        (2, 0, 2, (4,), False, True),  # no shared expert (the shared gate remains)
        (3, 2, 0, (4,), True, False),  # no task-specific expert
    ],
)
def test_extraction_level_matches_a_written_out_reference(
    n_tasks, n_shared, n_own, sizes, last, grouped
):
    torch.manual_seed(0)
    level = ExtractionLevel(n_tasks, 7, n_shared, n_own, sizes, last=last)
    shape = (n_tasks + 1, 9, 7) if grouped else (9, 7)
    inputs = torch.randn(shape, requires_grad=True)
    out = level(inputs)
    expected, task_gates, shared_gate = _reference_level(level, inputs)
    torch.testing.assert_close(out, expected)
    got_task_gates, got_shared_gate = level.gate_weights(inputs)
    torch.testing.assert_close(got_task_gates, task_gates)
    assert (got_shared_gate is None) == last
    if not last:
        torch.testing.assert_close(got_shared_gate, shared_gate)
    # Same gradients for every parameter and the input.
    weights = torch.randn_like(out)
    wrt = [inputs, *level.parameters()]
    grads = torch.autograd.grad((out * weights).sum(), wrt)
    wanted = torch.autograd.grad((expected * weights).sum(), wrt, allow_unused=True)
    for got, want in zip(grads, wanted):
        torch.testing.assert_close(got, torch.zeros_like(got) if want is None else want)


def test_extraction_level_needs_an_expert_layer():
    with pytest.raises(ValueError, match="expert_hidden_sizes must have at least one"):
        ExtractionLevel(2, 7, 1, 1, (), last=True)


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
