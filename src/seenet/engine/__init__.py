"""The training engine: one loop for both networks, checkpoints, resumption, several processes.

- :func:`fit` (:mod:`seenet.engine.loop`) and :class:`TrainSettings`
  (:mod:`seenet.engine.settings`);
- :class:`ResumableDistributedSampler` (:mod:`seenet.engine.sampler`) and :func:`sample_seed`
  (:mod:`seenet.engine.seeding`);
- :func:`save_checkpoint`, :func:`load_checkpoint` (:mod:`seenet.engine.checkpoint`);
- :func:`init_distributed`, :class:`DistInfo` (:mod:`seenet.engine.distributed`).
"""

from __future__ import annotations

from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .distributed import DistInfo, barrier, cleanup, init_distributed, resolve_device
from .loop import fit
from .sampler import ResumableDistributedSampler
from .seeding import sample_seed
from .settings import TrainSettings, build_optimizer, lr_factor

__all__ = [
    "fit",
    "TrainSettings",
    "lr_factor",
    "build_optimizer",
    "ResumableDistributedSampler",
    "sample_seed",
    "save_checkpoint",
    "load_checkpoint",
    "rng_state",
    "set_rng_state",
    "init_distributed",
    "DistInfo",
    "resolve_device",
    "cleanup",
    "barrier",
]
