"""SeeNet: the three-branch self-erasing network (paper §3, SPEC §1 items 1-9).

A backbone gives features ``F``; branch S_A turns them into class activation maps; the
class-agnostic erasing map of the ground-truth classes splits the feature map into attention,
potential and background zones; one fused ``self_erase`` call gives the inputs of S_B (C-ReLU with
the ternary mask) and S_C (the background zone only). The paper's ablations (Table 1) are one
flag, ``erase_mode``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from .._io import save_state_dict_file
from .._validation import (
    check_choice,
    check_fraction,
    check_rows,
    check_scales,
    check_size,
    check_tensor,
    check_thresholds,
)
from ..functional import class_agnostic_attention, self_erase
from ._param_groups import make_param_groups
from ._registry import register_model
from .backbones import create_backbone, load_pretrained_weights
from .heads import HeadOutput, SelfErasingHead

__all__ = [
    "ERASE_MODES",
    "FEATURE_POLICIES",
    "LOSS_REDUCTIONS",
    "SeeNet",
    "SeeNetOutput",
    "seenet_resnet101",
    "seenet_resnet50",
    "seenet_vgg16",
]

#: The settings of the paper's ablation (Table 1), see :class:`SeeNet`.
ERASE_MODES = ("seenet", "zero", "acol", "cam")
#: What the branches read, see :class:`SeeNet`'s ``feature_policy``.
FEATURE_POLICIES = ("crelu", "linear", "relu")
#: How :meth:`SeeNet.loss` normalises each branch's binary cross-entropy.
LOSS_REDUCTIONS = ("mean", "batch")
_HEAD_PREFIXES = ("head_a.", "head_b.", "head_c.")


@dataclass
class SeeNetOutput:
    """What :meth:`SeeNet.forward` returns; branches the mode lacks are ``None``.

    Attributes:
        logits_a: Image-level scores of S_A, (N, K).
        logits_b: Scores of S_B (C-ReLU input), (N, K).
        logits_c: Scores of S_C (background input), (N, K); trained towards all zeros.
        cams_a: Class activation maps of S_A, (N, K, h, w).
        cams_b: Class activation maps of S_B, (N, K, h, w).
        attention: The class-agnostic erasing map ``M`` in [0, 1], detached, (N, 1, h, w).
    """

    logits_a: torch.Tensor
    logits_b: torch.Tensor | None
    logits_c: torch.Tensor | None
    cams_a: torch.Tensor
    cams_b: torch.Tensor | None
    attention: torch.Tensor | None


def _normalize_maps(cams: torch.Tensor) -> torch.Tensor:
    """Per class: ``relu``, then divide by the spatial maximum (all-zero maps stay 0), fp32."""
    a = torch.relu(cams.float())
    mx = a.amax(dim=(2, 3), keepdim=True)
    return torch.where(mx > 0, a / mx.clamp_min(torch.finfo(a.dtype).tiny), torch.zeros_like(a))


class SeeNet(nn.Module):
    """Self-Erasing Network (Hou et al., NeurIPS 2018) on any backbone.

    Args:
        backbone: A timm model name (created with ``features_only=True``) or an ``nn.Module``
            mapping (N, 3, H, W) images to (N, C, h, w) features.
        num_classes: K, the number of classes (VOC: 20, background not counted).
        erase_mode: ``"seenet"`` (the full method); ``"zero"`` (ablation setting 2: the
            background zone is zeroed instead of sign-flipped, S_C kept); ``"acol"`` (setting 1:
            S_B sees ``relu(F) * [M < acol_threshold * max(M)]``, no S_C); ``"cam"`` (S_A alone).
        pretrained: ``False``; ``True`` for timm's ImageNet weights of the backbone (offline
            this fails within seconds and says how to pass a file); or the path of a local
            ``.safetensors`` / PyTorch state-dict file holding either backbone weights (timm's
            full-model state dict, or the backbone's own) or a whole-model checkpoint written by
            :meth:`save_pretrained` (told apart by its ``head_*`` keys).
        delta_high: Attention-zone threshold ``δh`` of the ternary mask (paper: 0.7).
        delta_low: Background-zone threshold ``δl`` (paper: 0.05).
        delta_bg: Background threshold ``δc`` of S_C; ``None`` means ``(δh + δl) / 2``.
        acol_threshold: Erasing threshold of the ``"acol"`` mode (ACoL's default 0.6).
        hidden_channels: Width of the 3x3 conv layers of each branch (paper: 512).
        num_convs: Number of 3x3 conv layers per branch (paper: 3).
        normalize: How the erasing map normalises each class map, ``"max"`` or ``"minmax"``.
        feature_index: Feature level of a timm backbone; ``None`` is the deepest level, except
            for VGG, whose default is conv5_3 at stride 16 (the authors' choice).
        head_dropout: Dropout after each hidden ReLU of the branches (the authors' S_A has 0.5
            after its last hidden convolution).
        init_std: Standard deviation of the new layers' initial weights (authors: 0.01);
            ``None`` keeps PyTorch's default initialisation of ``nn.Conv2d``.
        backbone_kwargs: Extra ``timm.create_model`` arguments (e.g. ``{"output_stride": 16}``).
        share_bc: S_C uses S_B's head (``head_c is head_b``), so S_C's all-zero target trains
            S_B's weights; the authors' released network names S_B's parameters, which in Caffe
            only matters for sharing (SPEC 1b).
        feature_policy: What the branches read. ``"linear"`` (default, a choice of ours measured
            in the design notes): the masks multiply ``F`` itself, so every branch reads the same
            features; on non-negative features such as VGG16's conv5_3 (after its ReLU) this is
            exactly the paper's C-ReLU. ``"crelu"`` (the paper's text taken literally): S_A reads
            ``F``, S_B and S_C read ``max(F, 0)`` times their masks, which on a backbone whose
            level is not post-activation hides half of what S_A sees from them. ``"relu"``: every
            branch, S_A included, reads ``max(F, 0)``.
        test_delta_high: ``δh`` of S_B's ternary mask in :meth:`attention_maps` (``None``: the
            training value; the authors' deploy network uses 0.8).
        test_delta_low: ``δl`` in :meth:`attention_maps` (``None``: the training value; the
            authors' deploy network uses 0.0, which turns the sign flip off).
        head_lr_mult: Learning-rate multiplier of the branches in :meth:`param_groups` (the
            paper's Caffe recipes for new layers: 10; the authors' released network: 1).
        bias_lr_mult: Extra learning-rate multiplier of one-dimensional parameters (biases,
            normalisation) in :meth:`param_groups` (Caffe's convention and the authors': 2).
        loss_reduction: ``"mean"``: each branch's binary cross-entropy is averaged over N·K;
            ``"batch"``: summed over the K classes and averaged over the N images, as Caffe's
            ``SigmoidCrossEntropyLoss`` normalises (K times larger).
        erase_warmup: Train S_A alone for this many iterations before the erasing branches join
            (a choice of ours, not in the paper: their masks then come from an S_A that already
            localises). The training stage tells the model the iteration through
            :meth:`set_iteration`; 0 (default) erases from the start, as the paper.

    Attributes:
        backbone: The feature extractor; ``backbone(images)`` returns (N, C, h, w).
        head_a: Branch S_A (:class:`~seenet.models.heads.SelfErasingHead`).
        head_b: Branch S_B, ``None`` in ``"cam"`` mode.
        head_c: Branch S_C, ``None`` in ``"cam"`` and ``"acol"`` modes.
        feature_channels: C.

    Example:
        >>> backbone = nn.Sequential(nn.Conv2d(3, 8, 3, stride=4, padding=1), nn.ReLU())
        >>> model = SeeNet(backbone, num_classes=3, hidden_channels=16)
        >>> images, labels = torch.randn(2, 3, 32, 32), torch.tensor([[1, 0, 0], [0, 1, 1]])
        >>> out = model(images, labels)
        >>> out.logits_a.shape, out.cams_b.shape, out.attention.shape
        (torch.Size([2, 3]), torch.Size([2, 3, 8, 8]), torch.Size([2, 1, 8, 8]))
        >>> model.loss(out, labels).backward()
        >>> maps = model.eval().attention_maps(images, labels)
        >>> maps.shape, bool(maps.min() >= 0), bool(maps.max() <= 1)
        (torch.Size([2, 3, 32, 32]), True, True)
    """

    def __init__(
        self,
        backbone: str | nn.Module = "vgg16",
        num_classes: int = 20,
        erase_mode: str = "seenet",
        pretrained: bool | str | os.PathLike = False,
        delta_high: float = 0.7,
        delta_low: float = 0.05,
        delta_bg: float | None = None,
        acol_threshold: float = 0.6,
        hidden_channels: int = 512,
        num_convs: int = 3,
        normalize: str = "max",
        feature_index: int | None = None,
        *,
        head_dropout: float = 0.0,
        init_std: float | None = 0.01,
        backbone_kwargs: dict[str, Any] | None = None,
        share_bc: bool = False,
        feature_policy: str = "linear",
        test_delta_high: float | None = None,
        test_delta_low: float | None = None,
        head_lr_mult: float = 10.0,
        bias_lr_mult: float = 1.0,
        loss_reduction: str = "mean",
        erase_warmup: int = 0,
    ):
        super().__init__()
        self.erase_mode = check_choice(erase_mode, "erase_mode", ERASE_MODES)
        self.delta_high, self.delta_low = check_thresholds(delta_high, delta_low)
        self.test_delta_high, self.test_delta_low = check_thresholds(
            self.delta_high if test_delta_high is None else test_delta_high,
            self.delta_low if test_delta_low is None else test_delta_low,
        )
        self.feature_policy = check_choice(feature_policy, "feature_policy", FEATURE_POLICIES)
        self.loss_reduction = check_choice(loss_reduction, "loss_reduction", LOSS_REDUCTIONS)
        if not isinstance(share_bc, bool):
            raise ValueError(f"share_bc must be a bool, got {share_bc!r}")
        self.share_bc = share_bc
        for value, name in ((head_lr_mult, "head_lr_mult"), (bias_lr_mult, "bias_lr_mult")):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        self.head_lr_mult, self.bias_lr_mult = float(head_lr_mult), float(bias_lr_mult)
        if isinstance(erase_warmup, bool) or not isinstance(erase_warmup, int) or erase_warmup < 0:
            raise ValueError(f"erase_warmup must be a non-negative integer, got {erase_warmup!r}")
        self.erase_warmup = erase_warmup
        self._erasing = erase_warmup == 0
        self.delta_bg = None if delta_bg is None else check_fraction(delta_bg, "delta_bg")
        self.acol_threshold = check_fraction(acol_threshold, "acol_threshold")
        self.normalize = check_choice(normalize, "normalize", ("max", "minmax"))
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be an integer >= 1, got {num_classes!r}")
        if not (pretrained is False or pretrained is True or pretrained is None) and not (
            isinstance(pretrained, (str, os.PathLike))
        ):
            raise ValueError(
                f"pretrained must be False, True or the path of a weights file, got {pretrained!r}"
            )
        self.num_classes = num_classes
        self.backbone, self.feature_channels = create_backbone(
            backbone, feature_index, backbone_kwargs
        )

        def head() -> SelfErasingHead:
            return SelfErasingHead(
                self.feature_channels,
                num_classes,
                hidden_channels=hidden_channels,
                num_convs=num_convs,
                dropout=head_dropout,
                init_std=init_std,
            )

        self.head_a = head()
        self.register_module("head_b", head() if self.erase_mode != "cam" else None)
        has_c = self.erase_mode in ("seenet", "zero")
        # set directly: ``head_c`` is a property (S_B's head with ``share_bc``)
        self._modules["head_c"] = head() if has_c and not share_bc else None
        if pretrained is not False and pretrained is not None:
            self.load_pretrained(pretrained)

    def set_iteration(self, iteration: int) -> None:
        """Tell the model the training iteration (1-based) it is about to run.

        With ``erase_warmup`` the erasing branches stay out of training (forward and loss) until
        iteration ``erase_warmup + 1``; without it this does nothing.
        """
        self._erasing = iteration > self.erase_warmup

    @property
    def head_c(self) -> SelfErasingHead | None:
        """Branch S_C: its own head, S_B's head with ``share_bc``, ``None`` without S_C."""
        if self.share_bc and self.erase_mode in ("seenet", "zero"):
            return self.head_b
        return self._modules.get("head_c")

    # ------------------------------------------------------------------ weights
    def load_pretrained(self, pretrained: bool | str | os.PathLike) -> None:
        """Load weights as the ``pretrained`` constructor argument does.

        Args:
            pretrained: ``True`` for timm's ImageNet weights of the backbone, or a path to
                backbone weights or to a whole-model checkpoint.

        Raises:
            ValueError: If the weights do not fit (the message lists missing and unexpected
                keys and shape mismatches), or ``True`` is asked for a module backbone.
            RuntimeError: If timm's weights cannot be downloaded.
            FileNotFoundError: If the file does not exist.
        """
        load_pretrained_weights(self, pretrained, _HEAD_PREFIXES, "SeeNet")

    def save_pretrained(self, path: str | os.PathLike) -> None:
        """Write the whole model's state dict (atomically; safetensors if the name says so).

        ``SeeNet(<same arguments>, pretrained=path)`` gives back exactly these weights.

        Args:
            path: Destination, e.g. ``"seenet_vgg16.safetensors"`` or ``"model.pt"``.
        """
        save_state_dict_file(self.state_dict(), path)

    # ------------------------------------------------------------------ forward
    def _check_labels(self, labels: object, n: int) -> torch.Tensor:
        labels = check_rows(labels, "labels", n, self.num_classes)
        # multi-hot: every entry 0 or 1 (NaN fails too); one small check per batch, left out of
        # compiled graphs (it needs the values on the host)
        if (
            not torch.compiler.is_compiling()
            and labels.numel()
            and not bool(((labels == 0) | (labels == 1)).all())
        ):
            bad = labels[(labels != 0) & (labels != 1)].flatten()[:3].tolist()
            raise ValueError(f"labels must be multi-hot (0 or 1), got values such as {bad}")
        return labels

    def _features(self, images: object) -> torch.Tensor:
        images = check_tensor(images, "images", ("N", 3, "H", "W"))
        if not images.is_floating_point():
            raise ValueError(
                f"images must be floating-point (normalised) tensors, got dtype {images.dtype}"
            )
        stride = getattr(self.backbone, "reduction", None)
        if isinstance(stride, int) and min(images.shape[-2:]) < stride:
            raise ValueError(
                f"images must be at least {stride}x{stride} pixels for this backbone (its "
                f"features have stride {stride}), got {tuple(images.shape[-2:])}"
            )
        feats = self.backbone(images)
        if not isinstance(feats, torch.Tensor) or feats.ndim != 4:
            got = tuple(feats.shape) if isinstance(feats, torch.Tensor) else type(feats).__name__
            raise ValueError(f"the backbone must return (N, C, h, w) features, got {got}")
        return torch.relu(feats) if self.feature_policy == "relu" else feats

    @staticmethod
    def _labels_from_probs(probs: torch.Tensor) -> torch.Tensor:
        """Multi-hot labels: sigmoid >= 0.5, and at least the top-1 class per image."""
        top1 = F.one_hot(probs.argmax(dim=1), probs.shape[1]).bool()
        return ((probs >= 0.5) | top1).to(probs.dtype)

    def predict_labels(self, logits: torch.Tensor) -> torch.Tensor:
        """Labels predicted by S_A: ``sigmoid(logits) >= 0.5``, at least the top-1 class.

        Args:
            logits: Image-level scores (N, K).

        Returns:
            Multi-hot float labels (N, K).
        """
        return self._labels_from_probs(torch.sigmoid(logits.detach().float()))

    def _erase_branches(
        self,
        feats: torch.Tensor,
        attention: torch.Tensor,
        need_c: bool,
        thresholds: tuple[float, float] | None = None,
    ) -> tuple[HeadOutput, HeadOutput | None]:
        """S_B and S_C from one ``self_erase`` call (``thresholds``: ``(δh, δl)`` of S_B)."""
        assert self.head_b is not None
        high, low = thresholds or (self.delta_high, self.delta_low)
        rectify = self.feature_policy != "linear"
        if self.erase_mode == "acol":
            # F * [M < acol_threshold * max(M)]: the background input of the fused op
            _, x_b = self_erase(
                feats, attention, high, low, delta_bg=self.acol_threshold, rectify=rectify
            )
            return self.head_b(x_b), None
        x_b, x_c = self_erase(
            feats,
            attention,
            high,
            low,
            delta_bg=self.delta_bg,
            background="zero" if self.erase_mode == "zero" else "flip",
            rectify=rectify,
        )
        out_c = self.head_c(x_c) if need_c and self.head_c is not None else None
        return self.head_b(x_b), out_c

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> SeeNetOutput:
        """Run the backbone and the branches of the mode.

        Args:
            images: Normalised images.
            labels: Multi-hot image-level labels; they choose the classes of the erasing map.
                Required in training in the erasing modes; in eval mode ``None`` uses S_A's
                predicted labels (see :meth:`predict_labels`). Ignored in ``"cam"`` mode.

        Returns:
            A :class:`SeeNetOutput`.

        Raises:
            ValueError: For bad shapes, or missing labels while training an erasing mode.

        Shape:
            - images: (N, 3, H, W)
            - labels: (N, K)
        """
        feats = self._features(images)
        out_a = self.head_a(feats)
        if self.erase_mode == "cam" or (self.training and not self._erasing):
            return SeeNetOutput(out_a.logits, None, None, out_a.cams, None, None)
        if labels is None:
            if self.training:
                raise ValueError(
                    f"labels (N, {self.num_classes}) are required to train erase_mode="
                    f"{self.erase_mode!r}: the ground-truth classes drive the erasing map"
                )
            labels = self.predict_labels(out_a.logits)
        else:
            labels = self._check_labels(labels, feats.shape[0])
        attention = class_agnostic_attention(out_a.cams, labels, self.normalize)
        out_b, out_c = self._erase_branches(feats, attention, need_c=True)
        return SeeNetOutput(
            logits_a=out_a.logits,
            logits_b=out_b.logits,
            logits_c=None if out_c is None else out_c.logits,
            cams_a=out_a.cams,
            cams_b=out_b.cams,
            attention=attention,
        )

    def loss(self, output: SeeNetOutput, labels: torch.Tensor) -> torch.Tensor:
        """The training loss: ``BCE(logits_a, y) + BCE(logits_b, y) + BCE(logits_c, 0)``.

        Each term is ``binary_cross_entropy_with_logits`` averaged over N·K (``loss_reduction=
        "batch"``: summed over K, averaged over N); terms of branches the mode lacks are left
        out.

        Args:
            output: The output of :meth:`forward`.
            labels: Multi-hot labels (N, K).

        Returns:
            Scalar loss.
        """
        if not isinstance(output, SeeNetOutput):
            raise ValueError(f"output must be a SeeNetOutput, got {type(output).__name__}")
        target = self._check_labels(labels, output.logits_a.shape[0]).to(
            device=output.logits_a.device, dtype=output.logits_a.dtype
        )
        scale = float(target.shape[1]) if self.loss_reduction == "batch" else 1.0

        def bce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return F.binary_cross_entropy_with_logits(logits, y) * scale

        loss = bce(output.logits_a, target)
        if output.logits_b is not None:
            loss = loss + bce(output.logits_b, target)
        if output.logits_c is not None:
            loss = loss + bce(output.logits_c, torch.zeros_like(output.logits_c))
        return loss

    @torch.no_grad()
    def attention_maps(
        self,
        images: torch.Tensor,
        labels: torch.Tensor | None = None,
        size: int | tuple[int, int] | None = None,
        flip: bool = True,
        scales: Sequence[float] = (1.0,),
        branch: str = "fused",
    ) -> torch.Tensor:
        """Class attention maps in [0, 1] (SPEC §1 item 8), S_C discarded.

        Per class, the maps of S_A and S_B are each passed through ``relu`` and divided by their
        spatial maximum, then fused by an element-wise maximum. S_B's ternary mask uses
        ``test_delta_high`` and ``test_delta_low`` (by default the training thresholds). With
        ``flip`` the mirrored image goes through the network too and the mirrored-back maps join
        the maximum, so the maps of a mirrored image are the mirrored maps. With several
        ``scales`` (as IRN uses 1.0, 0.5, 1.5 and 2.0) the images are resized by each factor, the
        maps of every scale (flipped and fused as above) are resized to ``size`` and averaged (a
        choice of ours: each scale's maps are normalised before they are averaged). The result
        is resized bilinearly to ``size``; classes outside the driving labels are 0. Call
        ``model.eval()`` first; this runs without gradients and does not change the mode.

        Args:
            images: Normalised images (the recipe feeds 224x224 and asks for the original size).
            labels: Multi-hot labels choosing the classes; ``None`` uses S_A's predictions
                (sigmoid >= 0.5, at least the top-1 class; averaged over every view).
            size: Output size ``(H, W)`` or an int; default the size of ``images``.
            flip: Add horizontal test-time flipping.
            scales: Resizing factors of the images, averaged (``(1.0,)``: one scale).
            branch: ``"fused"`` (the paper: S_A and S_B fused), or one branch alone, ``"a"``
                or ``"b"``, to see what each contributes (``"b"`` needs an erasing mode).

        Returns:
            Float32 maps in [0, 1].

        Shape:
            - images: (N, 3, H_in, W_in)
            - labels: (N, K)
            - output: (N, K, H, W)
        """
        images = check_tensor(images, "images", ("N", "C", "H", "W"))
        n = images.shape[0]
        out_size = check_size(size, default=(int(images.shape[-2]), int(images.shape[-1])))
        if not isinstance(flip, bool):
            raise ValueError(f"flip must be a bool, got {flip!r}")
        scales = check_scales(scales)
        branch = check_choice(branch, "branch", ("fused", "a", "b"))
        if branch == "b" and self.head_b is None:
            raise ValueError(f"branch='b' needs an erasing mode; erase_mode is {self.erase_mode!r}")
        if labels is not None:
            labels = self._check_labels(labels, n)
        # one backbone pass per scale (and view); the labels may need every view's scores first
        views = []
        probs = torch.zeros((n, self.num_classes), device=images.device)
        for scale in scales:
            x = images
            if scale != 1.0:
                h, w = (max(1, round(d * float(scale))) for d in images.shape[-2:])
                x = F.interpolate(images, size=(h, w), mode="bilinear", align_corners=False)
            x = torch.cat([x, x.flip(-1)]) if flip else x
            feats = self._features(x)
            out_a = self.head_a(feats)
            p = torch.sigmoid(out_a.logits.float())
            probs += (p[:n] + p[n:]) / 2 if flip else p
            views.append((feats, out_a))
        if labels is None:
            labels = self._labels_from_probs(probs / len(scales))
        drive = labels.to(device=images.device, dtype=torch.float32)
        total = torch.zeros((n, self.num_classes, *out_size), device=images.device)
        for feats, out_a in views:
            both = torch.cat([drive, drive]) if flip else drive
            maps = _normalize_maps(out_a.cams)
            if self.head_b is not None and branch != "a":
                attention = class_agnostic_attention(out_a.cams, both, self.normalize)
                out_b, _ = self._erase_branches(
                    feats, attention, need_c=False,
                    thresholds=(self.test_delta_high, self.test_delta_low),
                )  # fmt: skip
                maps_b = _normalize_maps(out_b.cams)
                maps = maps_b if branch == "b" else torch.maximum(maps, maps_b)
            if flip:
                maps = torch.maximum(maps[:n], maps[n:].flip(-1))
            if tuple(maps.shape[-2:]) != out_size:
                maps = F.interpolate(maps, size=out_size, mode="bilinear", align_corners=False)
            total += maps.clamp(0.0, 1.0)
        maps = total / len(views)
        keep = (drive != 0)[:, :, None, None]
        return torch.where(keep, maps.clamp(0.0, 1.0), torch.zeros_like(maps))

    # ------------------------------------------------------------------ training
    def param_groups(self, lr: float, weight_decay: float) -> list[dict[str, Any]]:
        """Parameter groups for ``torch.optim.SGD``: backbone at ``lr``, branches at ``head_lr_mult``.

        Biases and other one-dimensional parameters (normalisation scales) get no weight decay and
        an extra ``bias_lr_mult``. Each group carries ``name`` and ``lr_mult`` for learning-rate
        schedules; frozen parameters and empty groups are left out.

        Args:
            lr: Base learning rate (paper: 1e-3).
            weight_decay: Weight decay of the multi-dimensional weights (paper: 2e-4).

        Returns:
            A list of parameter-group dicts.

        Example:
            >>> model = SeeNet(nn.Conv2d(3, 4, 1), num_classes=2, hidden_channels=4)
            >>> [(g["name"], g["lr"], g["weight_decay"]) for g in model.param_groups(0.1, 1e-4)]
            [('backbone', 0.1, 0.0001), ('backbone_no_decay', 0.1, 0.0), ('heads', 1.0, 0.0001), ('heads_no_decay', 1.0, 0.0)]
        """  # noqa: E501
        return make_param_groups(
            self, lr, weight_decay, lambda name, _: not name.startswith("backbone."),
            names=("backbone", "heads"), new_mult=self.head_lr_mult,
            no_decay_mult=self.bias_lr_mult,
        )


def _factory(backbone: str, pretrained: bool | str | os.PathLike, kwargs: dict) -> SeeNet:
    if "backbone" in kwargs:
        raise ValueError(f"this model fixes backbone={backbone!r}; use SeeNet(...) for another")
    return SeeNet(backbone=backbone, pretrained=pretrained, **kwargs)


@register_model(name="seenet")
def _seenet_any_backbone(pretrained: bool | str | os.PathLike = False, **kwargs: Any) -> SeeNet:
    """:class:`SeeNet` on the backbone given as ``backbone=`` (a timm name or a module).

    Args:
        pretrained: See :class:`SeeNet`.
        **kwargs: :class:`SeeNet` arguments, ``backbone`` included.
    """
    return SeeNet(pretrained=pretrained, **kwargs)


@register_model
def seenet_vgg16(pretrained: bool | str | os.PathLike = False, **kwargs: Any) -> SeeNet:
    """SeeNet on VGG16 (conv5_3, stride 16): the paper's configuration.

    Args:
        pretrained: See :class:`SeeNet`.
        **kwargs: Other :class:`SeeNet` arguments.
    """
    return _factory("vgg16", pretrained, kwargs)


@register_model
def seenet_resnet50(pretrained: bool | str | os.PathLike = False, **kwargs: Any) -> SeeNet:
    """SeeNet on ResNet-50 (deepest level, stride 32 unless ``backbone_kwargs`` says otherwise).

    Args:
        pretrained: See :class:`SeeNet`.
        **kwargs: Other :class:`SeeNet` arguments.
    """
    return _factory("resnet50", pretrained, kwargs)


@register_model
def seenet_resnet101(pretrained: bool | str | os.PathLike = False, **kwargs: Any) -> SeeNet:
    """SeeNet on ResNet-101 (deepest level, stride 32 unless ``backbone_kwargs`` says otherwise).

    Args:
        pretrained: See :class:`SeeNet`.
        **kwargs: Other :class:`SeeNet` arguments.
    """
    return _factory("resnet101", pretrained, kwargs)
