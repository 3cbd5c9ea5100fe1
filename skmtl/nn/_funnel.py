"""Funnels of sequential binary tasks: ESMM and AITM.

A funnel is a chain of binary stages (impression -> click -> purchase), each
reachable only through the one before. Both networks output, per stage, the
logit of the *joint* probability of reaching it, so each stage is an ordinary
binary task on the joint label and the standard loss is trained on the entire
space, as both papers do.

- X. Ma, L. Zhao, G. Huang, Z. Wang, Z. Hu, X. Zhu and K. Gai, "Entire Space
  Multi-Task Model: An Effective Approach for Estimating Post-Click
  Conversion Rate", SIGIR 2018.
- D. Xi, Z. Chen, P. Yan, Y. Zhang, Y. Zhu, F. Zhuang and Y. Chen, "Modeling
  the Sequential Dependence among Audience Multi-step Conversions with
  Multi-task Learning in Targeted Display Advertising", KDD 2021.
"""

import math

import torch
from torch import nn
from torch.nn import functional as F

from skmtl.nn._base import MultiTaskNetwork
from skmtl.nn._layers import StackedLinear


def joint_logits(conditional):
    """Turn each stage's conditional logit into the logit of reaching the stage.

    With ``q_k = sigmoid(c_k)`` the probability of stage ``k`` given stage
    ``k - 1``, the joint probability is ``p_k = q_1 ... q_k`` and
    ``1 - p_k = sum_{j <= k} p_{j-1} (1 - q_j)`` (leaving the funnel at stage
    ``j``). Both are computed in log space, a cumulative sum and a cumulative
    log-sum-exp, so the logit ``log p_k - log(1 - p_k)`` stays finite and
    accurate even where ``p_k`` is within rounding of 0 or 1.

    Parameters
    ----------
    conditional : torch.Tensor of shape (n_samples, n_stages)
        Logits of each stage given the previous one (the first stage's is
        its own).

    Returns
    -------
    torch.Tensor of shape (n_samples, n_stages)
        Logits of the joint probabilities; the first column is unchanged.

    Examples
    --------
    >>> import torch
    >>> from skmtl.nn import joint_logits
    >>> c = torch.tensor([[0.0, 0.0]])  # q = 1/2 at both stages
    >>> torch.sigmoid(joint_logits(c))
    tensor([[0.5000, 0.2500]])
    """
    log_q = F.logsigmoid(conditional)  # log P(stage k | stage k-1)
    log_leave = F.logsigmoid(-conditional)  # log P(not stage k | stage k-1)
    log_reach = log_q.cumsum(dim=1)  # log p_k
    log_reach_before = F.pad(log_reach[:, :-1], (1, 0))  # log p_{k-1}, p_0 = 1
    log_not_reach = torch.logcumsumexp(log_reach_before + log_leave, dim=1)
    return log_reach - log_not_reach


class _FunnelNetwork(MultiTaskNetwork):
    """Binary stages, each with its own tower on the shared input representation."""

    def __init__(self, cardinalities, n_numeric, output_sizes, **common):
        super().__init__(cardinalities, n_numeric, output_sizes, **common)
        if any(size != 1 for size in self.output_sizes):
            raise ValueError(
                "A funnel's stages are binary tasks with one output each; got "
                f"output_sizes={list(self.output_sizes)}."
            )
        self._build_towers(self.input.out_features)

    def represent(self, x):
        """Return the shared input representation, read by every stage's tower.

        Parameters
        ----------
        x : torch.Tensor of shape (n_samples, n_inputs)

        Returns
        -------
        torch.Tensor of shape (n_samples, n_inputs)
        """
        return x


class ESMM(_FunnelNetwork):
    """Entire Space Multi-task Model: joint probabilities as products of stages.

    Every stage has its own tower on the shared input representation (the
    shared embeddings of the paper) and predicts the stage's probability
    given the previous stage: pCTR, then pCVR. The network outputs the logit
    of the product ``pCTR x pCVR`` (pCTCVR), and of longer products for later
    stages, so a loss on each output is the paper's loss on pCTR and pCTCVR
    over all impressions; pCVR itself is never fitted on clicked rows only,
    which removes their sample-selection bias.

    Parameters
    ----------
    cardinalities : sequence of int
        Number of codes of each categorical column.
    n_numeric : int
        Number of numeric columns.
    output_sizes : sequence of int
        One 1 per stage of the funnel, in order.
    **common
        Parameters of :class:`MultiTaskNetwork`: ``embedding_dim``,
        ``tower_hidden_sizes``, ``dropout``, ``bag_cardinalities``,
        ``bag_mode``, ``device``, ``dtype``.

    See Also
    --------
    joint_logits : How the stages' conditional logits combine.
    AITM : Information transfer between the stages' towers instead.

    Examples
    --------
    >>> import torch
    >>> from skmtl.nn import ESMM, FeatureBatch
    >>> net = ESMM([5, 3], n_numeric=2, output_sizes=[1, 1])
    >>> codes = torch.zeros(4, 2, dtype=torch.long)
    >>> x = FeatureBatch.from_arrays(codes, torch.zeros(4, 2))
    >>> p = torch.sigmoid(net(x))  # P(click), P(click and purchase)
    >>> bool((p[:, 1] <= p[:, 0]).all())
    True
    """

    def conditional_logits(self, x):
        """Return each stage's logit given the previous stage.

        Parameters
        ----------
        x : FeatureBatch
            Encoded rows.

        Returns
        -------
        torch.Tensor of shape (n_samples, n_stages)
        """
        return super().forward(x)

    def forward(self, x):
        """Return the logit of reaching each stage.

        Parameters
        ----------
        x : FeatureBatch
            Encoded rows.

        Returns
        -------
        torch.Tensor of shape (n_samples, n_stages)
        """
        return joint_logits(self.conditional_logits(x))


class AdaptiveTransfer(nn.Module):
    """AITM's chain of information transfers from each stage to the next.

    For stage ``k + 1``: an info layer ``relu(W z_k + b)`` turns stage ``k``'s
    final representation ``z_k`` into what it passes on, and a self-attention
    over the two vectors (the stage's own tower output ``q_{k+1}`` and that
    information) mixes them into ``z_{k+1}``, with weights from the scaled dot
    products of their query and key projections. ``z_1 = q_1``.

    Parameters
    ----------
    n_links : int
        Number of transfers: the stages minus one.
    width : int
        Width of the towers' outputs.
    dropout : float, default=0.0
        Dropout after the info layer.
    device, dtype : optional
        Passed to the parameters.
    """

    def __init__(self, n_links, width, dropout=0.0, *, device=None, dtype=None):
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.n_links = int(n_links)
        # The info layer and the query, key and value projections of every
        # link, stacked over the links.
        self.info = StackedLinear(self.n_links, width, width, **kw)
        self.query = StackedLinear(self.n_links, width, width, **kw)
        self.key = StackedLinear(self.n_links, width, width, **kw)
        self.value = StackedLinear(self.n_links, width, width, **kw)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    @staticmethod
    def _project(layer, link, x):
        """Apply the ``link``-th of a StackedLinear's layers to ``x`` (..., H)."""
        return x @ layer.weight[link] + layer.bias[link]

    def forward(self, own):
        """Return each stage's representation after the transfers.

        Parameters
        ----------
        own : torch.Tensor of shape (n_links + 1, n_samples, width)
            Each stage's tower output.

        Returns
        -------
        torch.Tensor of shape (n_links + 1, n_samples, width)
        """
        stages = [own[0]]
        # A recurrence: what stage k passes on depends on stage k's own
        # transfer, so the links are visited in order.
        for link in range(self.n_links):
            info = self.dropout(torch.relu(self._project(self.info, link, stages[-1])))
            items = torch.stack([own[link + 1], info])  # (2, B, H)
            query = self._project(self.query, link, items)
            key = self._project(self.key, link, items)
            value = self._project(self.value, link, items)
            scores = (query * key).sum(-1) / math.sqrt(items.shape[-1])  # (2, B)
            weights = torch.softmax(scores, dim=0).unsqueeze(-1)  # (2, B, 1)
            stages.append((weights * value).sum(0))  # (B, H)
        return torch.stack(stages)


class AITM(_FunnelNetwork):
    """Adaptive Information Transfer Multi-task network with its calibrator.

    Each stage has its own tower. From the second stage on, an *info* layer
    maps the previous stage's representation to what it passes on, and the
    adaptive information transfer (AIT) module, a self-attention over the two
    vectors (the stage's own tower output and the transferred information),
    decides how much of each to use. Each stage's head outputs the logit of
    reaching it directly. The behavioural expectation calibrator penalises a
    later stage predicted more likely than an earlier one (a purchase more
    likely than the click it needs): :meth:`auxiliary_loss`.

    Parameters
    ----------
    cardinalities : sequence of int
        Number of codes of each categorical column.
    n_numeric : int
        Number of numeric columns.
    output_sizes : sequence of int
        One 1 per stage of the funnel, in order.
    calibrator_weight : float, default=0.6
        Weight of the calibrator in the loss (the paper's alpha, 0.6 in its
        code).
    **common
        Parameters of :class:`MultiTaskNetwork`: ``embedding_dim``,
        ``tower_hidden_sizes`` (each stage's tower before the AIT module),
        ``dropout``, ``bag_cardinalities``, ``bag_mode``, ``device``,
        ``dtype``.

    See Also
    --------
    ESMM : Joint probabilities as products of conditional ones.

    Examples
    --------
    >>> import torch
    >>> from skmtl.nn import AITM, FeatureBatch
    >>> net = AITM([5, 3], n_numeric=2, output_sizes=[1, 1, 1])
    >>> codes = torch.zeros(4, 2, dtype=torch.long)
    >>> x = FeatureBatch.from_arrays(codes, torch.zeros(4, 2))
    >>> out = net(x)
    >>> out.shape, net.auxiliary_loss(out).shape
    (torch.Size([4, 3]), torch.Size([4]))
    """

    def __init__(
        self, cardinalities, n_numeric, output_sizes, *, calibrator_weight=0.6, **common
    ):
        super().__init__(cardinalities, n_numeric, output_sizes, **common)
        self.calibrator_weight = float(calibrator_weight)
        self.transfer = None
        if self.n_tasks > 1:
            self.transfer = AdaptiveTransfer(
                self.n_tasks - 1,
                self.towers.hidden.out_features,
                self.dropout,
                **self._factory,
            )

    def forward(self, x):
        """Return the logit of reaching each stage.

        Parameters
        ----------
        x : FeatureBatch
            Encoded rows.

        Returns
        -------
        torch.Tensor of shape (n_samples, n_stages)
        """
        stages = self.towers.hidden(self.represent(self.input(x)))  # (K, B, H)
        if self.transfer is not None:
            stages = self.transfer(stages)
        out = self.towers.head(stages)  # (K, B, 1)
        return out[..., 0].transpose(0, 1)

    def auxiliary_loss(self, outputs):
        """Return the behavioural expectation calibrator of each row.

        ``calibrator_weight * sum_k max(p_k - p_{k-1}, 0)`` over the stages,
        with ``p_k`` the predicted probability of reaching stage ``k``.

        Parameters
        ----------
        outputs : torch.Tensor of shape (n_samples, n_stages)
            What :meth:`forward` returned.

        Returns
        -------
        torch.Tensor of shape (n_samples,) or None
            None for a single stage or a zero weight.
        """
        if self.n_tasks < 2 or self.calibrator_weight == 0:
            return None
        p = torch.sigmoid(outputs)
        excess = torch.relu(p[:, 1:] - p[:, :-1]).sum(dim=1)
        return self.calibrator_weight * excess
