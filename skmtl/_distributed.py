"""What the training loop asks of the processes it runs in.

The loop never knows whether it runs alone or as one rank of several: it asks
a communicator to sum tensors over processes, to wrap the network for
gradient synchronisation and to agree on decisions. :class:`SingleProcess`
answers for one process; a multi-process communicator answers the same
questions over ``torch.distributed``.
"""


class SingleProcess:
    """The communicator of a fit in one process: every operation is local.

    Attributes
    ----------
    rank : int
        0.
    world_size : int
        1.
    """

    rank = 0
    world_size = 1

    def sum(self, tensor):
        """Return the sum of ``tensor`` over processes (here, itself).

        Parameters
        ----------
        tensor : torch.Tensor

        Returns
        -------
        torch.Tensor
        """
        return tensor

    def wrap(self, module):
        """Return the module that synchronises gradients (here, itself).

        Parameters
        ----------
        module : torch.nn.Module

        Returns
        -------
        torch.nn.Module
        """
        return module

    def reduce_gradients(self, parameters):
        """Average the gradients of parameters outside the wrapped module.

        Parameters
        ----------
        parameters : list of torch.Tensor
            E.g. a loss-weighting strategy's learnt weights.
        """

    def any(self, flag):
        """Return True if ``flag`` is True on any process.

        Parameters
        ----------
        flag : bool

        Returns
        -------
        bool
        """
        return bool(flag)
