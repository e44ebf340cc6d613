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

Stage-specific keys are listed in each function's docstring. Every stage works under ``torchrun``:
training uses DistributedDataParallel (``gloo`` on CPU, ``nccl`` on GPU), batch jobs and evaluation
split the images across processes.

Example:
    >>> import seenet.stages as stages
    >>> sorted(n for n in stages.__all__)
    ['attention_maps', 'evaluate', 'proxy_gt', 'train_attention', 'train_seg']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .config import resolve_config

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
      ``poly_power`` (0.9), ``accumulate`` (1, gradient accumulation steps), ``amp`` (false),
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
    (:func:`seenet.pseudo.save_maps`). Finished files are skipped, so an interrupted job resumes.

    Reads the model description from ``attention.model`` and the ``maps`` section:

    - ``split`` (``None`` = ``data.train_split``), ``weights`` (``None`` =
      ``{work_dir}/attention/model.safetensors``), ``input_size`` (224; ``None`` keeps the
      original size), ``flip`` (true), ``labels`` (``"gt"``: image-level ground truth;
      ``"predicted"``: S_A's predictions), ``save_png`` (false: also write
      ``{image}_{class}.png`` per class, ``class`` the foreground class index), ``overlays`` (0:
      number of images for which a PNG overlay is written to ``out_dir/overlays``), ``out_dir``
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
    ``conflict_threshold`` (``None``), ``ignore_index`` (255), ``overlays`` (0), ``out_dir``
    (``{work_dir}/proxy_gt``).

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
      set it to ``SegmentationClassAug`` under ``data.root`` for the fully supervised upper bound.
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
    ``out_dir/predictions``), ``overlays`` (0), ``out_dir`` (``{work_dir}/evaluation``).

    Args:
        cfg: The configuration.

    Returns:
        Summary: ``miou``, ``iou`` (class name -> IoU, ``None`` for classes absent from both
        prediction and ground truth), ``num_images``, ``table`` (printable per-class table),
        ``seconds``, ``out_dir``.
    """
    return _run_evaluate(resolve_config(cfg))


def _not_ready(cfg: dict[str, Any]) -> dict[str, Any]:
    raise NotImplementedError("this stage is not implemented yet")


_run_train_attention = _run_attention_maps = _run_proxy_gt = _run_train_seg = _run_evaluate = (
    _not_ready
)
