"""SGD parameter groups shared by the models: new layers at 10x, no decay on 1-D tensors."""

from __future__ import annotations

from typing import Any, Callable

from torch import nn

__all__ = ["make_param_groups"]


def make_param_groups(
    model: nn.Module,
    lr: float,
    weight_decay: float,
    is_new: Callable[[str, nn.Parameter], bool],
    names: tuple[str, str] = ("pretrained", "new"),
    new_mult: float = 10.0,
    no_decay_mult: float = 1.0,
) -> list[dict[str, Any]]:
    """Split ``model``'s trainable parameters into up to four SGD groups.

    Groups ``A``, ``A_no_decay``, ``B``, ``B_no_decay`` for ``names = (A, B)``: parameters for
    which ``is_new(name, param)`` holds go to ``B`` with learning rate ``lr * new_mult``; others to
    ``A`` at ``lr``. One-dimensional parameters (biases, normalisation scales) get no weight decay
    and their learning rate times ``no_decay_mult`` (Caffe recipes give biases 2). Empty groups are
    left out. Each group carries ``name`` and ``lr_mult`` (for schedulers).

    Raises:
        ValueError: If ``lr`` or ``weight_decay`` is not a non-negative number.

    Example:
        >>> groups = make_param_groups(nn.Linear(2, 2), 0.1, 1e-4, lambda n, p: False)
        >>> [(g["name"], g["lr"], g["weight_decay"]) for g in groups]
        [('pretrained', 0.1, 0.0001), ('pretrained_no_decay', 0.1, 0.0)]
    """
    for value, arg in ((lr, "lr"), (weight_decay, "weight_decay")):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{arg} must be a non-negative number, got {value!r}")
    old, new = names
    buckets: dict[str, list[nn.Parameter]] = {
        old: [], f"{old}_no_decay": [], new: [], f"{new}_no_decay": [],
    }  # fmt: skip
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        key = new if is_new(name, param) else old
        if param.ndim <= 1:
            key += "_no_decay"
        buckets[key].append(param)
    groups = []
    for key, params in buckets.items():
        if not params:
            continue
        mult = new_mult if key in (new, f"{new}_no_decay") else 1.0
        if key.endswith("_no_decay"):
            mult *= no_decay_mult
        groups.append(
            {
                "name": key,
                "params": params,
                "lr": lr * mult,
                "lr_mult": mult,
                "weight_decay": 0.0 if key.endswith("_no_decay") else float(weight_decay),
            }
        )
    return groups
