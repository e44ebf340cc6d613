"""Where things are: the data set's layout and the run's output folders, each resolved once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Config, DataConfig, resolve_config
from ..data.saliency import SaliencyFolder
from ..data.voc import VOCImageLabels, VOCSegmentation, load_image, read_split

__all__ = ["DataLayout", "RunPaths", "start"]


@dataclass(frozen=True)
class DataLayout:
    """A VOC-format data set's folders, resolved once from the ``data`` section.

    Folders given relative in the configuration are relative to ``root``.

    Example:
        >>> import tempfile
        >>> from seenet.config import DataConfig
        >>> layout = DataLayout.from_config(DataConfig(root=tempfile.mkdtemp()))
        >>> layout.image_path("2007_000032").name
        '2007_000032.jpg'
    """

    root: Path
    image_dir: Path
    image_suffix: str
    label_dir: Path
    eval_label_dir: Path
    annotation_dir: Path
    labels_from: str
    saliency_dir: Path | None
    train_split: str
    val_split: str
    num_classes: int
    num_workers: int

    @classmethod
    def from_config(cls, data: DataConfig) -> DataLayout:
        """Resolve ``data``; the root folder must exist.

        Raises:
            ValueError: If ``data.root`` is not set.
            FileNotFoundError: If it does not exist.
        """
        if data.root is None:
            raise ValueError(
                "data.root is required: the VOC2012 folder (holding JPEGImages, "
                "SegmentationClassAug, ImageSets/Segmentation), e.g. "
                "data.root=data/VOCdevkit/VOC2012"
            )
        root = Path(data.root)
        if not root.is_dir():
            raise FileNotFoundError(f"data.root not found: {root}")

        def inside(folder: str) -> Path:
            path = Path(folder)
            return path if path.is_absolute() else root / path

        return cls(
            root=root,
            image_dir=inside(data.image_dir),
            image_suffix=data.image_suffix,
            label_dir=inside(data.label_dir),
            eval_label_dir=inside(data.eval_label_dir),
            annotation_dir=inside(data.annotation_dir),
            labels_from=data.labels_from,
            saliency_dir=None if data.saliency_dir is None else inside(data.saliency_dir),
            train_split=data.train_split,
            val_split=data.val_split,
            num_classes=data.num_classes,
            num_workers=data.num_workers,
        )

    def inside(self, folder: str | Path | None, default: Path) -> Path:
        """``folder`` relative to the root unless absolute; ``default`` when ``None``."""
        if folder is None:
            return default
        path = Path(folder)
        return path if path.is_absolute() else self.root / path

    def ids(self, split: str | None, default: str | None = None) -> list[str]:
        """Image ids of ``split`` (a name under ``ImageSets/Segmentation`` or a list file)."""
        return read_split(self.root, split or default or self.train_split)

    def image_path(self, image_id: str) -> Path:
        """The image file of ``image_id``."""
        return self.image_dir / f"{image_id}{self.image_suffix}"

    def load_image(self, image_id: str) -> Any:
        """The RGB image (``PIL.Image``) of ``image_id``."""
        return load_image(self.image_path(image_id))

    def image_array(self, image_id: str) -> np.ndarray:
        """The RGB image of ``image_id`` as a uint8 (H, W, 3) array."""
        return np.asarray(self.load_image(image_id))

    def image_labels(
        self,
        split: str | None = None,
        *,
        ids: list[str] | None = None,
        transform: Callable[..., Any] | None = None,
        seed: int = 0,
    ) -> VOCImageLabels:
        """Images with their image-level labels (the attention network's data)."""
        return VOCImageLabels(
            self.root,
            split or self.train_split,
            image_dir=str(self.image_dir),
            label_dir=str(self.label_dir),
            annotation_dir=str(self.annotation_dir),
            labels_from=self.labels_from,
            image_suffix=self.image_suffix,
            num_classes=self.num_classes,
            transform=transform,
            seed=seed,
            ids=ids,
        )

    def segmentation(
        self,
        label_dir: Path,
        split: str | None = None,
        *,
        transform: Callable[..., Any] | None = None,
        seed: int = 0,
    ) -> VOCSegmentation:
        """Images with label maps from ``label_dir`` (the segmentation network's data)."""
        return VOCSegmentation(
            self.root,
            split or self.train_split,
            label_dir=label_dir,
            image_dir=str(self.image_dir),
            image_suffix=self.image_suffix,
            transform=transform,
            seed=seed,
        )

    def saliency(self) -> SaliencyFolder | None:
        """The saliency folder of ``data.saliency_dir``, or ``None`` for the built-in saliency.

        Raises:
            FileNotFoundError: If the configured folder does not exist.
        """
        if self.saliency_dir is None:
            return None
        if not self.saliency_dir.is_dir():
            raise FileNotFoundError(f"data.saliency_dir not found: {self.saliency_dir}")
        return SaliencyFolder(self.saliency_dir)


@dataclass(frozen=True)
class RunPaths:
    """Every stage's input and output folder, defaults derived from ``work_dir``.

    Example:
        >>> paths = RunPaths.from_config(Config(work_dir="runs/x"))
        >>> paths.maps.as_posix(), paths.maps_weights.as_posix()
        ('runs/x/maps', 'runs/x/attention/model.safetensors')
    """

    work_dir: Path
    attention: Path
    maps: Path
    maps_weights: Path
    proxy_maps: Path
    proxy: Path
    seg_labels: Path
    segmentation: Path
    eval_weights: Path
    evaluation: Path
    evaluate_maps: Path
    evaluate_labels: Path
    cam_weights: Path
    cam_maps: Path
    saliency: Path
    saliency_weights: Path
    evaluate_saliency: Path

    @classmethod
    def from_config(cls, cfg: Config) -> RunPaths:
        """Resolve the output folders of ``cfg`` (explicit ``out_dir`` keys win)."""
        work = Path(cfg.work_dir)

        def pick(value: str | None, default: Path) -> Path:
            return Path(value) if value is not None else default

        attention = pick(cfg.attention.train.out_dir, work / "attention")
        maps = pick(cfg.maps.out_dir, work / "maps")
        proxy = pick(cfg.proxy.out_dir, work / "proxy_gt")
        segmentation = pick(cfg.segmentation.train.out_dir, work / "segmentation")
        return cls(
            work_dir=work,
            attention=attention,
            maps=maps,
            maps_weights=pick(cfg.maps.weights, attention / "model.safetensors"),
            proxy_maps=pick(cfg.proxy.maps_dir, maps),
            proxy=proxy,
            seg_labels=pick(cfg.segmentation.label_dir, proxy),
            segmentation=segmentation,
            eval_weights=pick(cfg.evaluate.weights, segmentation / "model.safetensors"),
            evaluation=pick(cfg.evaluate.out_dir, work / "evaluation"),
            evaluate_maps=pick(cfg.evaluate_maps.out_dir, work / "evaluate_maps"),
            evaluate_labels=pick(cfg.evaluate_labels.out_dir, work / "evaluate_labels"),
            cam_weights=pick(cfg.cam.weights, attention / "model.safetensors"),
            cam_maps=pick(cfg.cam.out_dir, work / "cam_maps"),
            saliency=pick(cfg.saliency.train.out_dir, work / "saliency"),
            saliency_weights=pick(cfg.saliency_maps.weights,
                                  pick(cfg.saliency.train.out_dir, work / "saliency")
                                  / "model.safetensors"),
            evaluate_saliency=pick(cfg.evaluate_saliency.out_dir, work / "evaluate_saliency"),
        )


def start(cfg: Any, data: bool = True) -> tuple[Config, Any, DataLayout | None, RunPaths]:
    """What every stage does first: configuration, distributed context, data layout and paths.

    ``data=False`` skips the data layout, for stages with data of their own.

    Returns:
        ``(cfg, info, layout, paths)``.
    """
    from ..engine import init_distributed

    cfg = resolve_config(cfg)
    info = init_distributed(cfg.device)
    layout = DataLayout.from_config(cfg.data) if data else None
    return cfg, info, layout, RunPaths.from_config(cfg)
