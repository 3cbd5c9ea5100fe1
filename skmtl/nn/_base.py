"""The frame every skmtl network shares: input layer, a task-specific body, towers."""

from torch import nn

from skmtl.nn._layers import FeatureInput, TaskTowers


class MultiTaskNetwork(nn.Module):
    """Input layer -> architecture-specific body -> one tower per task.

    Subclasses build their body, call :meth:`_build_towers` with its output
    width, and implement :meth:`represent`, which maps the input
    representation to what each task's tower reads. A network whose training
    needs more than each task's own loss (a constraint between tasks' outputs)
    overrides :meth:`auxiliary_loss`.

    Parameters
    ----------
    cardinalities : sequence of int
        Number of codes of each categorical column.
    n_numeric : int
        Number of numeric columns.
    output_sizes : sequence of int
        Outputs of each task (1 for binary and regression, n_classes for
        multiclass).
    embedding_dim : int, default=8
        Embedding size of every categorical and multi-valued column.
    tower_hidden_sizes : sequence of int, default=(32,)
        Hidden layers of each task tower.
    dropout : float, default=0.0
        Dropout probability after hidden activations.
    bag_cardinalities : sequence of int, default=()
        Number of codes of each multi-valued column.
    bag_mode : {"mean", "sum"}, default="mean"
        Pooling of a multi-valued column's embeddings.
    device, dtype : optional
        Passed to every parameter.
    """

    def __init__(
        self,
        cardinalities,
        n_numeric,
        output_sizes,
        *,
        embedding_dim=8,
        tower_hidden_sizes=(32,),
        dropout=0.0,
        bag_cardinalities=(),
        bag_mode="mean",
        device=None,
        dtype=None,
    ):
        super().__init__()
        self.n_tasks = len(output_sizes)
        self.output_sizes = tuple(int(s) for s in output_sizes)
        self._factory = {"device": device, "dtype": dtype}
        self.input = FeatureInput(
            cardinalities,
            n_numeric,
            embedding_dim,
            bag_cardinalities=bag_cardinalities,
            bag_mode=bag_mode,
            **self._factory,
        )
        self._tower_args = (self.output_sizes, tower_hidden_sizes, dropout)
        self.dropout = float(dropout)

    def _build_towers(self, in_features):
        """Create the task towers once the body's output width is known."""
        self.towers = TaskTowers(in_features, *self._tower_args, **self._factory)

    def represent(self, x):
        """Map the input representation to the towers' input.

        Parameters
        ----------
        x : torch.Tensor of shape (n_samples, n_inputs)

        Returns
        -------
        torch.Tensor of shape (n_tasks, n_samples, width) or (n_samples, width)
        """
        raise NotImplementedError

    def forward(self, x):
        """Return the concatenated per-task logits (or raw regression values).

        Parameters
        ----------
        x : FeatureBatch
            Encoded rows.

        Returns
        -------
        torch.Tensor of shape (n_samples, sum(output_sizes))
        """
        return self.towers(self.represent(self.input(x)))

    def auxiliary_loss(self, outputs):
        """Per-row loss added to the weighted task losses; None for none.

        The training loop adds its mean over the rows of the batch to the
        loss it minimises. Networks whose tasks constrain each other (a
        funnel's later stage never more likely than an earlier one) override
        it; the others need nothing.

        Parameters
        ----------
        outputs : torch.Tensor of shape (n_samples, sum(output_sizes))
            What :meth:`forward` returned.

        Returns
        -------
        torch.Tensor of shape (n_samples,) or None
        """
        return None

    def task_parameters(self):
        """Return the parameters that only one task's loss reaches (the towers).

        Returns
        -------
        list of torch.nn.Parameter
        """
        return list(self.towers.parameters())

    def shared_parameters(self):
        """Return the parameters that every task's loss can reach.

        Returns
        -------
        list of torch.nn.Parameter
        """
        task_ids = {id(p) for p in self.task_parameters()}
        return [p for p in self.parameters() if id(p) not in task_ids]
