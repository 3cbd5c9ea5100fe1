"""The frame every skmtl network shares: input layer, a task-specific body, towers."""

from torch import nn

from skmtl.nn._layers import FeatureInput, TaskTowers


class MultiTaskNetwork(nn.Module):
    """Input layer -> architecture-specific body -> one tower per task.

    Subclasses build ``self.body`` and implement :meth:`represent`, which maps
    the input representation to what each task's tower reads.

    Parameters
    ----------
    cardinalities : sequence of int
        Number of codes of each categorical column.
    n_numeric : int
        Number of numeric columns.
    output_sizes : sequence of int
        Outputs of each task (1 for binary and regression, n_classes for
        multiclass).
    embedding_dim : int
        Embedding size of every categorical column.
    tower_hidden_sizes : sequence of int
        Hidden layers of each task tower.
    dropout : float
        Dropout probability after hidden activations.
    device, dtype : optional
        Passed to every parameter.
    """

    def __init__(
        self,
        cardinalities,
        n_numeric,
        output_sizes,
        *,
        embedding_dim,
        tower_hidden_sizes,
        dropout,
        device=None,
        dtype=None,
    ):
        super().__init__()
        self.n_tasks = len(output_sizes)
        self.output_sizes = tuple(int(s) for s in output_sizes)
        self._factory = {"device": device, "dtype": dtype}
        self.input = FeatureInput(
            cardinalities, n_numeric, embedding_dim, **self._factory
        )
        self._tower_args = (self.output_sizes, tower_hidden_sizes, dropout)

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

    def forward(self, categorical, numeric):
        """Return the concatenated per-task logits (or raw regression values).

        Parameters
        ----------
        categorical : torch.LongTensor of shape (n_samples, n_categorical)
        numeric : torch.Tensor of shape (n_samples, n_numeric)

        Returns
        -------
        torch.Tensor of shape (n_samples, sum(output_sizes))
        """
        return self.towers(self.represent(self.input(categorical, numeric)))

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
