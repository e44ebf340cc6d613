"""Weight loading shared by the models: timm's ImageNet weights and checked state-dict loading.

Two helpers:

* :func:`hub_state_dict` gives timm's ImageNet weights for a timm model name, as the state dict
  of the full timm classifier (timm's own key names). Weights already in the local Hugging Face
  cache are used without touching the network; otherwise the hub is probed first, so that a
  machine without internet fails within seconds with a :class:`RuntimeError` that says how to
  pass a local file instead.
* :func:`load_checked` loads a state dict strictly and, when it does not fit, raises a
  :class:`ValueError` that lists every missing key, unexpected key and shape mismatch.
"""

from __future__ import annotations

import os
import socket
import threading
import urllib.parse
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn as nn

from .._io import load_state_dict_file

__all__ = ["hub_state_dict", "load_checked", "state_dict_mismatches"]

_PROBE_TIMEOUT_S = 3.0
_MAX_LISTED = 25


def _offline_by_env() -> bool:
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return True
    return False


def _reachable(url: str, timeout: float = _PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to ``url``'s host opens within ``timeout`` seconds.

    Name resolution is not bounded by socket timeouts, so the probe runs in a daemon thread and
    the caller waits at most ``timeout`` (plus a little) for it.
    """
    parsed = urllib.parse.urlparse(url)
    host = parsed.hostname
    if not host:
        return False
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(result and result[0])


def _cached_weights_file(cfg: object) -> Path | None:
    """The locally cached weights file for a timm pretrained config, if there is one."""
    hf_hub_id = getattr(cfg, "hf_hub_id", None)
    if hf_hub_id:
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:  # pragma: no cover - huggingface_hub comes with timm
            return None
        repo_id, _, revision = hf_hub_id.partition("@")
        filename = getattr(cfg, "hf_hub_filename", None) or "pytorch_model.bin"
        candidates = [filename]
        if not filename.endswith(".safetensors"):
            candidates.insert(0, "model.safetensors")
        for name in candidates:
            found = try_to_load_from_cache(repo_id, name, revision=revision or None)
            if isinstance(found, str) and os.path.isfile(found):
                return Path(found)
    url = getattr(cfg, "url", None)
    if url:
        path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(
            urllib.parse.urlparse(url).path
        )
        if path.is_file():
            return path
    return None


def _how_to_pass_a_file(model_name: str) -> str:
    return (
        f"To use local weights instead, save timm's state dict of {model_name!r} on a machine "
        f"with internet (e.g. `safetensors.torch.save_file(timm.create_model({model_name!r}, "
        f"pretrained=True).state_dict(), '{model_name}.safetensors')`), copy the file here and "
        f"pass pretrained='/path/to/{model_name}.safetensors' (a .safetensors file or a PyTorch "
        "state dict, read with weights_only=True)."
    )


def hub_state_dict(model_name: str) -> dict[str, torch.Tensor]:
    """Timm's ImageNet weights for ``model_name``, as the full timm model's state dict.

    The weights are taken from the local Hugging Face (or torch hub) cache when they are there.
    Otherwise the hub is probed first; offline (``HF_HUB_OFFLINE=1`` or no connection within a
    few seconds) this fails quickly instead of waiting for network timeouts.

    Args:
        model_name: A timm model name, optionally with a pretrained tag (``"vgg16.tv_in1k"``).

    Returns:
        The state dict of ``timm.create_model(model_name, pretrained=True)``: timm's key names,
        classifier included, tensors on the CPU.

    Raises:
        ValueError: If timm does not know ``model_name``.
        RuntimeError: If timm has no pretrained weights for the model, or they cannot be
            downloaded; the message says how to pass a local file instead.
    """
    import timm

    if not isinstance(model_name, str) or not timm.is_model(model_name):
        raise ValueError(f"model_name must be a timm model name, got {model_name!r}")
    cfg = timm.models.get_pretrained_cfg(model_name)
    if cfg is None or not (cfg.hf_hub_id or cfg.url or cfg.file):
        raise RuntimeError(
            f"timm has no pretrained weights for {model_name!r}. " + _how_to_pass_a_file(model_name)
        )
    cached = _cached_weights_file(cfg)
    if cached is not None:
        weights = load_state_dict_file(cached)
        # pass the cached file through timm so that its checkpoint filter (key renames, reshapes)
        # applies exactly as for a download, without any network access
        model = timm.create_model(
            model_name,
            pretrained=True,
            pretrained_cfg_overlay={"source": "", "state_dict": weights},
        )
    else:
        if cfg.hf_hub_id:
            from huggingface_hub import constants

            endpoint = constants.ENDPOINT
        else:
            endpoint = cfg.url or ""
        if _offline_by_env():
            raise RuntimeError(
                f"cannot download timm's weights for {model_name!r}: the Hugging Face hub is set "
                "offline (HF_HUB_OFFLINE) and the weights are not in the local cache. "
                + _how_to_pass_a_file(model_name)
            )
        if not _reachable(endpoint):
            raise RuntimeError(
                f"cannot download timm's weights for {model_name!r}: {endpoint} is not reachable "
                "and the weights are not in the local cache. " + _how_to_pass_a_file(model_name)
            )
        try:
            model = timm.create_model(model_name, pretrained=True)
        except Exception as e:
            raise RuntimeError(
                f"cannot download timm's weights for {model_name!r} ({type(e).__name__}: {e}). "
                + _how_to_pass_a_file(model_name)
            ) from e
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def state_dict_mismatches(
    module: nn.Module, state_dict: Mapping[str, torch.Tensor]
) -> tuple[list[str], list[str], list[str]]:
    """Compare a state dict with a module's own, without loading anything.

    Args:
        module: The module the weights are meant for.
        state_dict: Names to tensors.

    Returns:
        ``(missing, unexpected, shape_mismatches)``: keys the module needs that the state dict
        lacks; keys the module does not have; and ``"key: file (a, b) vs model (c, d)"`` lines.

    Example:
        >>> lin = nn.Linear(2, 3)
        >>> state_dict_mismatches(lin, {"weight": torch.zeros(3, 4), "scale": torch.ones(1)})
        (['bias'], ['scale'], ['weight: file (3, 4) vs model (3, 2)'])
    """
    own = module.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [
        f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state_dict.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    return missing, unexpected, shapes


def _listing(title: str, items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    more = f", ... and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
    return f"{len(items)} {title}: {shown}{more}"


def load_checked(module: nn.Module, state_dict: Mapping[str, torch.Tensor], what: str) -> None:
    """Load ``state_dict`` into ``module`` strictly, with an error that lists what does not fit.

    Args:
        module: The module to load into (in place).
        state_dict: Names to tensors; values are copied (and cast to the module's dtypes).
        what: Words for the weights in the error message, e.g. ``"backbone weights 'vgg16'"``.

    Raises:
        ValueError: If keys are missing, unexpected or have other shapes; the message lists
            each kind. Nothing is loaded in that case.

    Example:
        >>> lin = nn.Linear(2, 3)
        >>> load_checked(lin, {"weight": torch.ones(3, 2), "bias": torch.zeros(3)}, "weights")
        >>> lin.weight.detach().sum().item()
        6.0
        >>> load_checked(lin, {"weight": torch.ones(3, 2)}, "my weights")
        Traceback (most recent call last):
        ...
        ValueError: my weights do not fit the model: 1 missing keys: bias
    """
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"{what} must be a mapping of names to tensors, got {type(state_dict)}")
    bad = [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(f"{what}: values must be tensors; not tensors: {', '.join(bad[:10])}")
    missing, unexpected, shapes = state_dict_mismatches(module, state_dict)
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(_listing("missing keys", missing))
        if unexpected:
            parts.append(_listing("unexpected keys", unexpected))
        if shapes:
            parts.append(_listing("shape mismatches", shapes))
        raise ValueError(f"{what} do not fit the model: " + "; ".join(parts))
    module.load_state_dict(dict(state_dict), strict=True)
