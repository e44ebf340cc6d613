"""The five stages of the SeeNet pipeline, one function each.

Each function takes a configuration dict (partial dicts are merged onto
:data:`seenet.config.DEFAULTS`, the paper's settings) and returns a summary dict that is also
written as JSON beside the stage's outputs. The ``seenet`` command line and the built-in demo both
call these functions; nothing here parses arguments.

Configuration keys read by every stage:

- ``work_dir`` (``"runs/seenet_vgg16"``): default parent of every output; each stage writes into
  its own sub-folder (``attention/``, ``maps/``, ``proxy_gt/``, ``segmentation/``,
  ``evaluation/``) unless an explicit ``out_dir`` is given.
- ``seed`` (0): seeds weights of new layers, data order and augmentation.
- ``device`` (``"auto"``): ``"auto"`` (CUDA when available, the local rank's GPU under
  ``torchrun``), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
- ``data``: where the VOC-format data set lives (:mod:`seenet.data.voc`):

  - ``root`` (required): the ``VOC2012`` folder (``JPEGImages``, ``SegmentationClass``,
    ``SegmentationClassAug``, ``Annotations``, ``ImageSets/Segmentation``).
  - ``train_split`` (``"train_aug"``), ``val_split`` (``"val"``): a name looked up as
    ``ImageSets/Segmentation/{name}.txt`` or a path to a list file.
  - ``image_dir`` (``"JPEGImages"``), ``image_suffix`` (``".jpg"``), ``label_dir``
    (``"SegmentationClassAug"``, masks giving the image-level labels of training images),
    ``eval_label_dir`` (``"SegmentationClass"``, ground truth for evaluation), ``annotation_dir``
    (``"Annotations"``): folders relative to ``root`` unless absolute.
  - ``labels_from`` (``"masks"``): image-level labels from the masks in ``label_dir`` or from the
    XML files in ``annotation_dir`` (``"xml"``).
  - ``saliency_dir`` (``None``): folder of 8-bit saliency PNGs named like the images (the paper uses
    DSS); ``None`` uses the built-in saliency of :mod:`seenet.saliency` (weaker).
  - ``num_classes`` (20), ``num_workers`` (4).

Stage-specific keys are listed in each function's docstring. Folders under ``data`` are relative
to ``data.root``; every other path is relative to the working directory. Every stage works under
``torchrun``: training uses DistributedDataParallel (``gloo`` on CPU, ``nccl`` on GPU), batch jobs
and evaluation split the images across processes.

Example:
    >>> import seenet.stages as stages
    >>> sorted(n for n in stages.__all__)
    ['attention_maps', 'evaluate', 'proxy_gt', 'train_attention', 'train_seg']
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ._classes import VOC_CLASSES, VOC_FOREGROUND
from ._io import atomic_write, load_state_dict_file
from .config import dump_config, resolve_config

__all__ = ["train_attention", "attention_maps", "proxy_gt", "train_seg", "evaluate"]


def train_attention(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Train the self-erasing attention network (paper §3, §5.1) on image-level labels.

    Reads ``data`` and the ``attention`` section:

    - ``attention.model``: ``name`` (``"seenet_vgg16"``: a name from :func:`seenet.list_models`,
      or ``"SeeNet"`` to build :class:`seenet.SeeNet` from the other keys), ``pretrained``
      (``True``: timm ImageNet weights; ``False``; or a local weights file), and any constructor
      keyword (``erase_mode`` ``"seenet"``, ``backbone``, ``hidden_channels``, ``num_convs``,
      ``delta_high``, ...).
    - ``attention.transforms``: ``scale_range`` ([256, 480], shorter side), ``crop_size`` (224),
      ``flip`` (true).
    - ``attention.train``: ``batch_size`` (16, the global batch over all processes and
      accumulation steps), ``iterations`` (25000), ``lr`` (1e-3, new layers at 10x through the
      model's ``param_groups``), ``momentum`` (0.9), ``weight_decay`` (2e-4), ``schedule``
      (``"step"``; or ``"poly"``, ``"constant"``), ``lr_steps`` ([15000]), ``lr_gamma`` (0.1),
      ``poly_power`` (0.9), ``accumulate`` (1, gradient accumulation steps), ``clip_grad_norm``
      (null: no clipping, as the paper; a number caps the gradients' global norm), ``amp`` (false),
      ``channels_last`` (false: weights in the channels-last memory format, faster convolutions),
      ``deterministic`` (true), ``checkpoint_every`` (1000), ``log_every`` (20), ``resume``
      (false: continue from ``out_dir/checkpoint.pt``), ``out_dir`` (``{work_dir}/attention``).

    Writes into ``out_dir``: ``checkpoint.pt`` (every ``checkpoint_every`` iterations, atomically),
    ``model.safetensors`` (final weights), ``metrics.jsonl``, ``config.yaml``, ``summary.json``.

    Args:
        cfg: The configuration (partial dicts are merged onto the defaults).

    Returns:
        Summary: ``iterations``, ``final_loss``, ``seconds``, ``images_per_second``, ``weights``
        (path of ``model.safetensors``), ``out_dir``, ``resumed_from`` (iteration or ``None``).
    """
    return _run_train_attention(resolve_config(cfg))


def attention_maps(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Compute class attention maps for every image of a split (paper §5.1 inference).

    Each image is resized to ``maps.input_size`` (224), passed through
    :meth:`seenet.SeeNet.attention_maps` (S_A and S_B fused, flipped), and the maps of the driving
    classes are stored at the image's original size as one ``.npz`` per image
    (:func:`seenet.data.maps.save_maps`). Finished files are skipped, so an interrupted job resumes.

    Reads the model description from ``attention.model`` and the ``maps`` section:

    - ``split`` (``None`` = ``data.train_split``), ``weights`` (``None`` =
      ``{work_dir}/attention/model.safetensors``), ``input_size`` (224; ``None`` keeps the
      original size), ``flip`` (true), ``labels`` (``"gt"``: image-level ground truth;
      ``"predicted"``: S_A's predictions), ``save_png`` (false: also write
      ``{image}_{class}.png`` per class, ``class`` the foreground class index), ``overlays`` (0:
      PNG overlays in ``out_dir/overlays`` for the first N images of the split), ``overlay_ids``
      (``[]``: overlays for these image ids instead; a list or ``"id1,id2"``), ``out_dir``
      (``{work_dir}/maps``).

    Args:
        cfg: The configuration.

    Returns:
        Summary: ``total``, ``written``, ``skipped``, ``seconds``, ``out_dir``.
    """
    return _run_attention_maps(resolve_config(cfg))


def proxy_gt(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Build proxy ground truth from stored maps and saliency (paper Algorithm 1).

    For every image of the split, reads ``maps_dir/{id}.npz`` and the saliency map
    (``data.saliency_dir/{id}.png``, or the built-in saliency when ``data.saliency_dir`` is
    ``None``), calls :func:`seenet.proxy_ground_truth` and writes a VOC-palette PNG
    ``out_dir/{id}.png`` (0 background, ``c + 1`` for class ``c``, 255 ignore). Finished files are
    skipped.

    Reads the ``proxy`` section: ``split`` (``None`` = ``data.train_split``), ``maps_dir``
    (``None`` = the maps stage's output), ``w`` (1.0), ``saliency_threshold`` (``None``),
    ``conflict_threshold`` (``None``), ``ignore_index`` (255), ``overlays`` (0) and
    ``overlay_ids`` (``[]``) as in :func:`attention_maps`, ``out_dir`` (``{work_dir}/proxy_gt``).

    Args:
        cfg: The configuration.

    Returns:
        Summary: ``total``, ``written``, ``skipped``, ``seconds``, ``out_dir``, ``class_pixels``
        (fraction of labelled pixels per label id over the written images).
    """
    return _run_proxy_gt(resolve_config(cfg))


def train_seg(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Train DeepLab-LargeFOV on the proxy labels (DeepLab defaults, paper §5.1).

    Reads ``data`` and the ``segmentation`` section:

    - ``segmentation.model``: ``name`` (``"deeplab_largefov_vgg16"``, or ``"DeepLabLargeFOV"`` to
      build :class:`seenet.DeepLabLargeFOV` from the other keys), ``pretrained`` (true), and any
      constructor keyword (``backbone``, ``num_classes`` = 21).
    - ``segmentation.label_dir`` (``None`` = the proxy stage's output): label PNGs for training;
      the path of ``SegmentationClassAug`` gives the fully supervised upper bound.
    - ``segmentation.transforms``: ``scale_range`` ([0.5, 1.5]), ``crop_size`` (321), ``flip``
      (true), ``ignore_index`` (255, also the padding label).
    - ``segmentation.train``: as ``attention.train`` with DeepLab's values: ``batch_size`` 10,
      ``iterations`` 20000, ``lr`` 1e-3 (classifier 10x), ``momentum`` 0.9, ``weight_decay`` 5e-4,
      ``schedule`` ``"poly"`` with ``poly_power`` 0.9, ``out_dir`` (``{work_dir}/segmentation``).

    The loss is pixel-wise cross-entropy (``ignore_index`` ignored) on the logits upsampled
    bilinearly to the crop size.

    Args:
        cfg: The configuration.

    Returns:
        Summary: as :func:`train_attention`.
    """
    return _run_train_seg(resolve_config(cfg))


def evaluate(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Evaluate the segmentation network: per-class IoU and mIoU (VOC protocol).

    Reads the model description from ``segmentation.model`` and the ``evaluate`` section:
    ``split`` (``None`` = ``data.val_split``), ``weights`` (``None`` =
    ``{work_dir}/segmentation/model.safetensors``), ``label_dir`` (``None`` =
    ``data.eval_label_dir``), ``scales`` ([1.0]; the paper's multi-scale test uses
    [0.5, 0.75, 1.0, 1.25, 1.5]), ``flip`` (false), ``crf`` (false: dense CRF with DeepLab's
    parameters, needs the ``crf`` extra), ``save_predictions`` (false: VOC-palette PNGs in
    ``out_dir/predictions``), ``overlays`` (0) and ``overlay_ids`` (``[]``) as in
    :func:`attention_maps` (image, ground truth, prediction), ``out_dir``
    (``{work_dir}/evaluation``).

    Args:
        cfg: The configuration.

    Returns:
        Summary: ``miou``, ``iou`` (class name -> IoU, ``None`` for classes absent from both
        prediction and ground truth), ``num_images``, ``table`` (printable per-class table),
        ``seconds``, ``out_dir``.
    """
    return _run_evaluate(resolve_config(cfg))



# ---------------------------------------------------------------------------------------------
# shared helpers


def _paths(cfg: Mapping[str, Any]) -> dict[str, Path]:
    """Every input and output location of the pipeline, defaults derived from ``work_dir``."""
    work = Path(cfg["work_dir"])

    def pick(value: Any, default: Path) -> Path:
        return Path(value) if value is not None else default

    attention = pick(cfg["attention"]["train"]["out_dir"], work / "attention")
    maps = pick(cfg["maps"]["out_dir"], work / "maps")
    proxy = pick(cfg["proxy"]["out_dir"], work / "proxy_gt")
    segmentation = pick(cfg["segmentation"]["train"]["out_dir"], work / "segmentation")
    return {
        "attention": attention,
        "maps": maps,
        "maps_weights": pick(cfg["maps"]["weights"], attention / "model.safetensors"),
        "proxy_maps": pick(cfg["proxy"]["maps_dir"], maps),
        "proxy": proxy,
        "seg_labels": pick(cfg["segmentation"]["label_dir"], proxy),
        "segmentation": segmentation,
        "eval_weights": pick(cfg["evaluate"]["weights"], segmentation / "model.safetensors"),
        "evaluation": pick(cfg["evaluate"]["out_dir"], work / "evaluation"),
    }


def _data_root(cfg: Mapping[str, Any]) -> Path:
    root = cfg["data"]["root"]
    if root is None:
        raise ValueError(
            "data.root is required: the VOC2012 folder (holding JPEGImages, "
            "SegmentationClassAug, ImageSets/Segmentation), e.g. data.root=data/VOCdevkit/VOC2012"
        )
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data.root not found: {root}")
    return root


def _in_root(root: Path, folder: str | None) -> Path:
    path = Path(folder) if folder is not None else root
    return path if path.is_absolute() else root / path


def _build_model(section: Mapping[str, Any], where: str, num_classes: int, **override: Any):
    """Build the model a ``*.model`` config section describes."""
    spec = dict(section)
    name = spec.pop("name")
    spec.setdefault("pretrained", False)
    spec.setdefault("num_classes", num_classes)
    spec.update(override)
    try:
        if name in ("SeeNet", "seenet"):
            from .models.seenet import SeeNet

            return SeeNet(**spec)
        if name in ("DeepLabLargeFOV", "deeplab_largefov"):
            from .models.deeplab import DeepLabLargeFOV

            return DeepLabLargeFOV(**spec)
        from .models._registry import create_model

        return create_model(name, **spec)
    except TypeError as e:
        raise ValueError(f"{where}.model: {e}") from None
    except ValueError as e:
        raise ValueError(f"{where}.model: {e}") from None


def _load_weights(model: nn.Module, path: Path, where: str) -> None:
    if not path.is_file():
        raise FileNotFoundError(
            f"{where}: trained weights not found: {path} (train first, or set the weights key)"
        )
    state = load_state_dict_file(path)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ValueError(
            f"{where}: {path} does not fit the model described by the configuration: "
            f"{str(e).splitlines()[0]}"
        ) from None


def _write_json(path: Path, obj: Mapping[str, Any]) -> None:
    with atomic_write(path, "w") as f:
        json.dump(obj, f, indent=2, default=str)
        f.write("\n")


def _identity(x: Any) -> Any:
    return x


def _progress(iterable: Any, total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=not enabled, dynamic_ncols=True)


def _reduce_counts(values: Sequence[float], info: Any) -> list[float]:
    if not info.distributed:
        return list(values)
    import torch.distributed as dist

    t = torch.tensor(list(values), dtype=torch.float64, device=info.device)
    dist.all_reduce(t)
    return t.cpu().tolist()


def _finish_batch_job(
    cfg: dict[str, Any],
    root: Path,
    section: Mapping[str, Any],
    ids: list[str],
    info: Any,
    out_dir: Path,
    overlays: Any,
    where: str,
    **counts: Any,
) -> dict[str, Any]:
    """Summary of a batch job (written by the main process with the chosen overlays)."""
    summary: dict[str, Any] = {"total": len(ids), **counts, "out_dir": str(out_dir)}
    summary["rank"] = info.rank
    overlay_ids = _overlay_ids(section, ids, where)
    if info.is_main:
        if overlay_ids:
            overlays(cfg, root, overlay_ids, out_dir, out_dir / "overlays")
        _write_json(out_dir / "summary.json", summary)
    return summary


def _overlay_ids(section: Mapping[str, Any], ids: list[str], where: str) -> list[str]:
    """The images to draw overlays for: ``overlay_ids`` if given, else the first ``overlays``."""
    chosen = [str(i) for i in section["overlay_ids"]]
    if not chosen:
        return ids[: section["overlays"]]
    known = set(ids)
    missing = [i for i in chosen if i not in known]
    if missing:
        raise ValueError(
            f"{where}.overlay_ids: {', '.join(missing)} not in the split (in YAML files, quote "
            "image ids such as '2007_000032', which YAML would otherwise read as a number)"
        )
    return chosen


def _class_name(index: int, num_classes: int) -> str:
    return VOC_FOREGROUND[index] if num_classes == len(VOC_FOREGROUND) else str(index)


def _label_name(label: int, num_classes: int) -> str:
    if label == 255:
        return "ignore"
    if num_classes == len(VOC_FOREGROUND) and label < len(VOC_CLASSES):
        return VOC_CLASSES[label]
    return str(label)


# ---------------------------------------------------------------------------------------------
# training stages


def _train(cfg: dict[str, Any], stage: str, dataset: Any, model: nn.Module, loss_fn: Any,
           out_dir: Path, info: Any) -> dict[str, Any]:
    from .engine import TrainSettings, fit

    settings = TrainSettings.from_config(
        cfg[stage]["train"], seed=cfg["seed"], num_workers=cfg["data"]["num_workers"]
    )
    if info.is_main:
        dump_config(cfg, out_dir / "config.yaml")
    summary = fit(
        model, dataset, loss_fn, settings, out_dir, device=info.device, desc=stage
    )
    summary["num_images"] = len(dataset)
    if info.is_main:
        _write_json(out_dir / "summary.json", summary)
    return summary


def _run_train_attention(cfg: dict[str, Any]) -> dict[str, Any]:
    from .data.transforms import AttentionTrainTransform
    from .data.voc import VOCImageLabels
    from .engine import init_distributed

    info = init_distributed(cfg["device"])
    root = _data_root(cfg)
    data, section = cfg["data"], cfg["attention"]
    transform = AttentionTrainTransform(**section["transforms"])
    dataset = VOCImageLabels(
        root,
        data["train_split"],
        image_dir=data["image_dir"],
        label_dir=data["label_dir"],
        annotation_dir=data["annotation_dir"],
        labels_from=data["labels_from"],
        image_suffix=data["image_suffix"],
        num_classes=data["num_classes"],
        transform=transform,
        seed=cfg["seed"],
    )
    torch.manual_seed(cfg["seed"])
    model = _build_model(section["model"], "attention", data["num_classes"])

    def loss_fn(net: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        output = net(batch["image"], batch["labels"])
        return model.loss(output, batch["labels"])

    return _train(cfg, "attention", dataset, model, loss_fn, _paths(cfg)["attention"], info)


def _run_train_seg(cfg: dict[str, Any]) -> dict[str, Any]:
    from .data.transforms import SegmentationTrainTransform
    from .data.voc import VOCSegmentation
    from .engine import init_distributed

    info = init_distributed(cfg["device"])
    root = _data_root(cfg)
    data, section = cfg["data"], cfg["segmentation"]
    paths = _paths(cfg)
    label_dir = paths["seg_labels"].resolve()
    if not label_dir.is_dir():
        raise FileNotFoundError(
            f"segmentation.label_dir not found: {label_dir} (run proxy-gt first)"
        )
    transforms = dict(section["transforms"])
    ignore_index = int(transforms["ignore_index"])
    dataset = VOCSegmentation(
        root,
        data["train_split"],
        label_dir=label_dir,
        image_dir=data["image_dir"],
        image_suffix=data["image_suffix"],
        transform=SegmentationTrainTransform(**transforms),
        seed=cfg["seed"],
    )
    torch.manual_seed(cfg["seed"])
    model = _build_model(section["model"], "segmentation", data["num_classes"] + 1)

    def loss_fn(net: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        logits = net(batch["image"])
        target = batch["label"]
        logits = F.interpolate(
            logits, size=target.shape[-2:], mode="bilinear", align_corners=False
        )
        return F.cross_entropy(logits.float(), target, ignore_index=ignore_index)

    return _train(cfg, "segmentation", dataset, model, loss_fn, paths["segmentation"], info)


# ---------------------------------------------------------------------------------------------
# attention maps


class _MapsJob(torch.utils.data.Dataset):
    """Loads one image (resized for the network) and its labels; skips finished outputs."""

    def __init__(self, cfg: dict[str, Any], root: Path, ids: list[str], out_dir: Path) -> None:
        from .data.voc import VOCImageLabels

        data = cfg["data"]
        self.images = VOCImageLabels(
            root,
            data["train_split"],
            image_dir=data["image_dir"],
            label_dir=data["label_dir"],
            annotation_dir=data["annotation_dir"],
            labels_from=data["labels_from"],
            image_suffix=data["image_suffix"],
            num_classes=data["num_classes"],
            ids=ids,
        )
        self.use_gt = cfg["maps"]["labels"] == "gt"
        self.input_size = cfg["maps"]["input_size"]
        self.out_dir = out_dir

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, Any]:
        from .data.transforms import resize_image, to_tensor

        image_id = self.images.ids[index]
        if (self.out_dir / f"{image_id}.npz").is_file():
            return {"id": image_id, "skip": True}
        image = self.images.load_image(index)
        size = (image.size[1], image.size[0])
        if self.input_size is not None:
            image = resize_image(image, self.input_size)
        labels = torch.from_numpy(self.images.labels(index)) if self.use_gt else None
        return {"id": image_id, "skip": False, "image": to_tensor(image), "labels": labels,
                "size": size}


def _save_class_pngs(out_dir: Path, image_id: str, classes: np.ndarray, maps: np.ndarray) -> None:
    from PIL import Image

    for c, m in zip(classes.tolist(), maps):
        img = Image.fromarray(np.rint(m * 255).astype(np.uint8), mode="L")
        with atomic_write(out_dir / f"{image_id}_{c}.png", "wb") as f:
            img.save(f, format="PNG")


def _image_array(data: Mapping[str, Any], root: Path, image_id: str) -> np.ndarray:
    """The RGB image of ``image_id`` as a uint8 (H, W, 3) array."""
    from .data.voc import load_image

    return np.asarray(
        load_image(_in_root(root, data["image_dir"]) / f"{image_id}{data['image_suffix']}")
    )


def _map_overlays(cfg: dict[str, Any], root: Path, ids: list[str], maps_dir: Path,
                  out_dir: Path) -> None:
    from .data.maps import load_maps
    from .viz import overlay_attention, save_png, tile

    data = cfg["data"]
    for image_id in ids:
        image = _image_array(data, root, image_id)
        classes, maps = load_maps(maps_dir / f"{image_id}.npz")
        panels = [image] + [overlay_attention(image, m) for m in maps]
        titles = ["image"] + [_class_name(c, data["num_classes"]) for c in classes.tolist()]
        save_png(out_dir / f"{image_id}.png", tile(panels, titles))


def _run_attention_maps(cfg: dict[str, Any]) -> dict[str, Any]:
    from .data.maps import save_maps
    from .data.voc import read_split
    from .engine import barrier, init_distributed

    t0 = time.perf_counter()
    info = init_distributed(cfg["device"])
    root = _data_root(cfg)
    paths = _paths(cfg)
    section = cfg["maps"]
    out_dir = paths["maps"]
    ids = read_split(root, section["split"] or cfg["data"]["train_split"])
    mine = ids[info.rank :: info.world_size]
    model = _build_model(
        cfg["attention"]["model"], "attention", cfg["data"]["num_classes"], pretrained=False
    )
    _load_weights(model, paths["maps_weights"], "maps.weights")
    model.to(info.device).eval()
    job = _MapsJob(cfg, root, mine, out_dir)
    loader = torch.utils.data.DataLoader(
        job, batch_size=None, num_workers=cfg["data"]["num_workers"], collate_fn=_identity
    )
    written = skipped = 0
    for item in _progress(loader, len(job), "attention maps", info.is_main):
        if item["skip"]:
            skipped += 1
            continue
        images = item["image"][None].to(info.device)
        labels = item["labels"]
        with torch.no_grad():
            maps = model.attention_maps(
                images,
                None if labels is None else labels[None].to(info.device),
                size=tuple(item["size"]),
                flip=section["flip"],
            )[0].float().cpu()
        if labels is not None:
            classes = labels.nonzero().flatten()
        else:
            classes = (maps.flatten(1).amax(1) > 0).nonzero().flatten()
        chosen = maps[classes].numpy()
        save_maps(out_dir / f"{item['id']}.npz", classes.numpy(), chosen)
        if section["save_png"]:
            _save_class_pngs(out_dir, item["id"], classes.numpy(), chosen)
        written += 1
    written, skipped = (int(v) for v in _reduce_counts([written, skipped], info))
    barrier(info)
    return _finish_batch_job(
        cfg, root, section, ids, info, out_dir, _map_overlays, "maps",
        written=written, skipped=skipped, seconds=time.perf_counter() - t0,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# proxy ground truth


class _ProxyJob(torch.utils.data.Dataset):
    """Reads maps and saliency, computes Algorithm 1 and writes the label PNG, for one image."""

    def __init__(self, cfg: dict[str, Any], root: Path, ids: list[str], maps_dir: Path,
                 out_dir: Path) -> None:
        from .saliency import SaliencyFolder

        data = cfg["data"]
        self.cfg, self.root, self.ids = cfg, root, ids
        self.maps_dir, self.out_dir = maps_dir, out_dir
        self.num_classes = int(data["num_classes"])
        self.image_dir = _in_root(root, data["image_dir"])
        self.image_suffix = data["image_suffix"]
        saliency_dir = data["saliency_dir"]
        if saliency_dir is not None:
            folder = _in_root(root, saliency_dir)
            if not folder.is_dir():
                raise FileNotFoundError(f"data.saliency_dir not found: {folder}")
            self.saliency: Any = SaliencyFolder(folder)
        else:
            self.saliency = None

    def __len__(self) -> int:
        return len(self.ids)

    def _saliency(self, image_id: str, size: tuple[int, int]) -> torch.Tensor:
        if self.saliency is not None:
            return self.saliency.load(image_id, size=size)
        from .data.voc import load_image
        from .saliency import frequency_tuned_saliency

        image = load_image(self.image_dir / f"{image_id}{self.image_suffix}")
        if (image.size[1], image.size[0]) != size:
            from PIL import Image

            image = image.resize((size[1], size[0]), Image.BILINEAR)
        return frequency_tuned_saliency(image)

    def __getitem__(self, index: int) -> dict[str, Any]:
        from .data.maps import load_maps
        from .data.voc import save_label
        from .proxy import proxy_ground_truth_from_maps

        image_id = self.ids[index]
        target = self.out_dir / f"{image_id}.png"
        if target.is_file():
            return {"id": image_id, "skip": True}
        p = self.cfg["proxy"]
        classes, maps = load_maps(self.maps_dir / f"{image_id}.npz")
        size = (int(maps.shape[1]), int(maps.shape[2]))
        saliency = self._saliency(image_id, size)
        if len(classes) and int(classes.max()) >= self.num_classes:
            raise ValueError(
                f"{self.maps_dir / f'{image_id}.npz'}: class {int(classes.max())} is outside the "
                f"{self.num_classes} classes of the recipe"
            )
        label = proxy_ground_truth_from_maps(
            classes,
            maps,
            saliency,
            w=p["w"],
            saliency_threshold=p["saliency_threshold"],
            conflict_threshold=p["conflict_threshold"],
            ignore_index=p["ignore_index"],
        )
        array = label.numpy().astype(np.uint8)
        save_label(target, array)
        return {"id": image_id, "skip": False, "counts": np.bincount(array.ravel(), minlength=256)}


def _label_overlays(cfg: dict[str, Any], root: Path, ids: list[str], label_dir: Path,
                    out_dir: Path) -> None:
    from .data.voc import load_label
    from .viz import overlay_labels, save_png, tile

    data = cfg["data"]
    for image_id in ids:
        image = _image_array(data, root, image_id)
        label = load_label(label_dir / f"{image_id}.png")
        save_png(out_dir / f"{image_id}.png",
                 tile([image, overlay_labels(image, label)], ["image", "proxy labels"]))


def _run_proxy_gt(cfg: dict[str, Any]) -> dict[str, Any]:
    from .data.voc import read_split
    from .engine import barrier, init_distributed

    t0 = time.perf_counter()
    info = init_distributed(cfg["device"])
    root = _data_root(cfg)
    paths = _paths(cfg)
    section = cfg["proxy"]
    maps_dir, out_dir = paths["proxy_maps"], paths["proxy"]
    if not maps_dir.is_dir():
        raise FileNotFoundError(f"proxy.maps_dir not found: {maps_dir} (run attention-maps first)")
    ids = read_split(root, section["split"] or cfg["data"]["train_split"])
    job = _ProxyJob(cfg, root, ids[info.rank :: info.world_size], maps_dir, out_dir)
    loader = torch.utils.data.DataLoader(
        job, batch_size=None, num_workers=cfg["data"]["num_workers"], collate_fn=_identity
    )
    written = skipped = 0
    counts = np.zeros(256, dtype=np.float64)
    for item in _progress(loader, len(job), "proxy ground truth", info.is_main):
        if item["skip"]:
            skipped += 1
        else:
            written += 1
            counts += item["counts"]
    reduced = _reduce_counts([written, skipped, *counts.tolist()], info)
    written, skipped, counts = int(reduced[0]), int(reduced[1]), np.asarray(reduced[2:])
    barrier(info)
    total_pixels = counts.sum()
    num_classes = cfg["data"]["num_classes"]
    class_pixels = {
        _label_name(i, num_classes): round(float(c / total_pixels), 6)
        for i, c in enumerate(counts)
        if c > 0
    }
    return _finish_batch_job(
        cfg, root, section, ids, info, out_dir, _label_overlays, "proxy",
        written=written, skipped=skipped, seconds=time.perf_counter() - t0,
        class_pixels=class_pixels,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# evaluation


class _EvalJob(torch.utils.data.Dataset):
    def __init__(self, root: Path, ids: list[str], data: Mapping[str, Any], label_dir: Path,
                 keep_image: bool) -> None:
        self.ids = ids
        self.image_dir = _in_root(root, data["image_dir"])
        self.suffix = data["image_suffix"]
        self.label_dir = label_dir
        self.keep_image = keep_image

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, Any]:
        from .data.transforms import to_tensor
        from .data.voc import load_image, load_label

        image_id = self.ids[index]
        image = load_image(self.image_dir / f"{image_id}{self.suffix}")
        label = load_label(self.label_dir / f"{image_id}.png")
        if label.shape != (image.size[1], image.size[0]):
            raise ValueError(
                f"label map {self.label_dir / (image_id + '.png')} is {label.shape}, its image "
                f"is {(image.size[1], image.size[0])}"
            )
        rgb = np.array(image) if self.keep_image else None  # writable: pydensecrf needs it
        return {"id": image_id, "image": to_tensor(image), "rgb": rgb,
                "label": torch.from_numpy(label.astype(np.int64))}


def _run_evaluate(cfg: dict[str, Any]) -> dict[str, Any]:
    from .data.voc import read_split, save_label
    from .engine import barrier, init_distributed
    from .metrics import ConfusionMatrix
    from .models.deeplab import segment

    t0 = time.perf_counter()
    info = init_distributed(cfg["device"])
    root = _data_root(cfg)
    paths = _paths(cfg)
    data, section = cfg["data"], cfg["evaluate"]
    out_dir = paths["evaluation"]
    if section["crf"]:
        from .crf import dense_crf
    label_dir = _in_root(root, section["label_dir"] or data["eval_label_dir"])
    ids = read_split(root, section["split"] or data["val_split"])
    overlay_ids = set(_overlay_ids(section, ids, "evaluate"))
    num_labels = data["num_classes"] + 1
    model = _build_model(cfg["segmentation"]["model"], "segmentation", num_labels,
                         pretrained=False)
    _load_weights(model, paths["eval_weights"], "evaluate.weights")
    model.to(info.device).eval()
    ignore = int(cfg["segmentation"]["transforms"]["ignore_index"])
    cm = ConfusionMatrix(num_classes=num_labels, ignore_index=ignore)
    job = _EvalJob(root, ids[info.rank :: info.world_size], data, label_dir,
                   keep_image=bool(section["crf"] or overlay_ids))
    loader = torch.utils.data.DataLoader(
        job, batch_size=None, num_workers=data["num_workers"], collate_fn=_identity
    )
    for item in _progress(loader, len(job), "evaluate", info.is_main):
        probs = segment(model, item["image"].to(info.device), scales=section["scales"],
                        flip=section["flip"]).float()
        if section["crf"]:
            probs = torch.from_numpy(dense_crf(item["rgb"], probs.cpu().numpy()))
        pred = probs.argmax(0).cpu()
        cm.update(pred, item["label"])
        if section["save_predictions"]:
            save_label(out_dir / "predictions" / f"{item['id']}.png", pred.numpy())
        if item["id"] in overlay_ids:
            from .viz import overlay_labels, save_png, tile

            rgb = item["rgb"]
            save_png(
                out_dir / "overlays" / f"{item['id']}.png",
                tile([rgb, overlay_labels(rgb, item["label"].numpy(), ignore_index=ignore),
                      overlay_labels(rgb, pred.numpy())], ["image", "ground truth", "prediction"]),
            )
    if info.distributed:
        import torch.distributed as dist

        matrix = cm.matrix.to(info.device)
        dist.all_reduce(matrix)
        cm.matrix = matrix.cpu()
    barrier(info)
    iou = cm.iou().tolist()
    summary: dict[str, Any] = {
        "miou": cm.miou(),
        "pixel_accuracy": cm.accuracy(),
        "iou": {name: (None if v != v else v) for name, v in zip(cm.class_names, iou)},
        "num_images": len(ids),
        "scales": list(section["scales"]),
        "flip": section["flip"],
        "crf": section["crf"],
        "seconds": time.perf_counter() - t0,
        "out_dir": str(out_dir),
        "table": cm.table(),
        "rank": info.rank,
    }
    if info.is_main:
        _write_json(out_dir / "metrics.json", summary)
    return summary
