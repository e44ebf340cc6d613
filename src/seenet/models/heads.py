"""The self-erasing head: C-ReLU, a few conv layers, class activation maps, pooled logits."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from .._validation import check_count, check_tensor

__all__ = ["HeadOutput", "SelfErasingHead"]


@dataclass
class HeadOutput:
    """What a :class:`SelfErasingHead` returns.

    Attributes:
        logits: Image-level class scores, the spatial mean of ``cams``, shape (N, K).
        cams: Class activation maps, shape (N, K, h, w).
    """

    logits: torch.Tensor
    cams: torch.Tensor


class SelfErasingHead(nn.Module):
    """One branch of SeeNet (S_A, S_B or S_C), usable on any backbone.

    ``forward(features, mask)`` first applies C-ReLU with ``mask`` when one is given
    (``max(features, 0) * mask``, paper Eqn. 1–2), then ``num_convs`` 3x3 convolutions of
    ``hidden_channels`` with ReLU (paper: 3 x 512), a 1x1 convolution to ``num_classes`` class
    activation maps, and global average pooling to logits.

    New layers are initialised as in the authors' code: weights normal with standard
    deviation ``init_std`` (0.01), biases zero (``init_std=None``: PyTorch's default);
    :meth:`reset_parameters` re-initialises.

    Args:
        in_channels: Channels of the features.
        num_classes: K, the number of classes (VOC: 20, background not counted).
        hidden_channels: Width of the 3x3 conv layers.
        num_convs: Number of 3x3 conv layers (0 allowed: only the 1x1 classifier).
        dropout: Dropout probability after each hidden ReLU (0 disables it).
        init_std: Standard deviation of the initial conv weights (``None``: PyTorch's default).

    Shape:
        - features: (N, in_channels, h, w)
        - mask: broadcastable to the features, typically (N, 1, h, w)
        - output ``.cams``: (N, num_classes, h, w); ``.logits``: (N, num_classes)

    Example:
        >>> head = SelfErasingHead(8, num_classes=3, hidden_channels=16, num_convs=2)
        >>> out = head(torch.randn(2, 8, 5, 5))
        >>> out.logits.shape, out.cams.shape
        (torch.Size([2, 3]), torch.Size([2, 3, 5, 5]))
        >>> mask = torch.ones(2, 1, 5, 5, dtype=torch.int8)
        >>> head(torch.randn(2, 8, 5, 5), mask).cams.shape
        torch.Size([2, 3, 5, 5])
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int = 20,
        hidden_channels: int = 512,
        num_convs: int = 3,
        dropout: float = 0.0,
        init_std: float | None = 0.01,
    ):
        super().__init__()
        check_count(in_channels, "in_channels", 1)
        check_count(num_classes, "num_classes", 1)
        check_count(hidden_channels, "hidden_channels", 1)
        check_count(num_convs, "num_convs", 0)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)):
            raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if init_std is not None and (
            isinstance(init_std, bool) or not isinstance(init_std, (int, float)) or init_std < 0
        ):
            raise ValueError(f"init_std must be None or a non-negative number, got {init_std!r}")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.init_std = None if init_std is None else float(init_std)
        layers: list[nn.Module] = []
        channels = in_channels
        for _ in range(num_convs):
            layers += [nn.Conv2d(channels, hidden_channels, 3, padding=1), nn.ReLU(inplace=True)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            channels = hidden_channels
        self.convs = nn.Sequential(*layers)
        self.classifier = nn.Conv2d(channels, num_classes, 1)
        self.reset_parameters()

    def reset_parameters(self, std: float | None = None) -> None:
        """Re-initialise every conv: weights ~ N(0, std^2) (default ``init_std``), biases 0.

        With ``std`` and ``init_std`` both ``None``, PyTorch's default ``nn.Conv2d``
        initialisation is used instead.
        """
        std = self.init_std if std is None else float(std)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                if std is None:
                    m.reset_parameters()
                    continue
                nn.init.normal_(m.weight, mean=0.0, std=std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> HeadOutput:
        """Class activation maps and logits of ``features`` (after C-ReLU with ``mask``)."""
        check_tensor(features, "features", ("N", self.in_channels, "h", "w"))
        if mask is not None:
            from ..functional import c_relu

            features = c_relu(features, mask)
        cams = self.classifier(self.convs(features))
        return HeadOutput(logits=cams.mean(dim=(2, 3)), cams=cams)
