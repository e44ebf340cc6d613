"""The SeeNet pipeline: one module per stage, one function per stage.

Each stage function takes a configuration (:class:`seenet.config.Config`, or a partial mapping
merged onto the paper's defaults) and returns a summary dict that is also written as JSON beside
the stage's outputs. The ``seenet`` command line (:mod:`seenet.cli`) is a thin table over these
functions; the built-in demo calls the same functions.

- ``train-attention``: :func:`seenet.pipeline.train_attention` (``data``, ``attention``);
- ``attention-maps``: :func:`seenet.pipeline.attention_maps` (``attention.model``,
  ``maps``);
- ``proxy-gt``: :func:`seenet.pipeline.proxy_gt` (``proxy``);
- ``train-seg``: :func:`seenet.pipeline.train_seg` (``segmentation``);
- ``evaluate``: :func:`seenet.pipeline.evaluate` (``segmentation.model``,
  ``evaluate``);
- ``evaluate-maps`` and ``evaluate-labels``: :func:`seenet.pipeline.evaluate_maps`,
  :func:`seenet.pipeline.evaluate_labels` (``evaluate_maps``, ``evaluate_labels``);
- ``cam-maps``: :func:`seenet.pipeline.cam_maps` (``cam``): stored maps from any classifier;
- ``train-saliency``, ``saliency-maps``, ``evaluate-saliency``:
  :func:`train_saliency`, :func:`saliency_maps`, :func:`evaluate_saliency` (``saliency``,
  ``saliency_maps``, ``evaluate_saliency``).

Every stage works under ``torchrun``: training uses DistributedDataParallel (``gloo`` on CPU,
``nccl`` on GPU), batch jobs (:func:`~seenet.pipeline._batch.run_batch_job`) split the images
across processes. Paths: folders under ``data`` are relative to ``data.root``
(:class:`DataLayout`); outputs default to sub-folders of ``work_dir`` (:class:`RunPaths`).

Example:
    >>> from seenet.pipeline import RunPaths
    >>> from seenet.config import Config
    >>> RunPaths.from_config(Config(work_dir="runs/a")).proxy.as_posix()
    'runs/a/proxy_gt'
"""

from __future__ import annotations

from ._batch import run_batch_job
from ._layout import DataLayout, RunPaths
from .evaluate import evaluate, evaluate_labels, evaluate_maps
from .maps import attention_maps, cam_maps
from .proxy import proxy_gt
from .saliency import evaluate_saliency, saliency_maps, train_saliency
from .train import train_attention, train_seg

__all__ = [
    "DataLayout",
    "RunPaths",
    "run_batch_job",
    "train_attention",
    "attention_maps",
    "proxy_gt",
    "train_seg",
    "evaluate",
    "evaluate_maps",
    "evaluate_labels",
    "cam_maps",
    "train_saliency",
    "saliency_maps",
    "evaluate_saliency",
]
