"""Models: SeeNet, its self-erasing heads, DeepLab-LargeFOV and the model registry."""

from ._registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
