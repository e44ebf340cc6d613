"""The registered ``seenet::self_erase`` op, its CPU reference and its backend dispatch.

Use :func:`seenet.functional.self_erase`; this package holds the machinery behind it:

- ``_reference``: vectorised PyTorch implementation (CPU and any device), the ground truth;
- ``_triton``: fused Triton kernels for CUDA tensors (also runs under ``TRITON_INTERPRET=1``);
- ``_dispatch``: ``backend="auto" | "reference" | "triton"`` and the ``SEENET_BACKEND`` override;
- ``_self_erase``: the ``torch.library.custom_op`` registration, fake kernels and autograd.
"""

from ._dispatch import available_backends, resolve_backend
from ._self_erase import self_erase_op

__all__ = ["available_backends", "resolve_backend", "self_erase_op"]
