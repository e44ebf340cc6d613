"""File helpers: atomic writes and safe state-dict loading.

Everything written by seenet goes through :func:`atomic_write` so that a crash never leaves a
half-written file behind, and every checkpoint is read with ``weights_only=True`` or through
safetensors, so that a downloaded file cannot run code.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Callable, TypeVar

import torch

T = TypeVar("T")

__all__ = [
    "bars_off",
    "atomic_write",
    "read_image_file",
    "load_state_dict_file",
    "save_state_dict_file",
    "torch_load_safely",
]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path`` and move it into place on success.

    Args:
        path: Final destination. Parent folders are created.
        mode: ``"wb"`` or ``"w"``.

    Yields:
        The open temporary file.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
        >>> with atomic_write(target, "w") as f:
        ...     _ = f.write("done")
        >>> target.read_text()
        'done'
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates the file readable by its owner only; give it the user's usual mode
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_image_file(path: str | os.PathLike, what: str, decode: Callable[[Any], T]) -> T:
    """Open an image file, decode it fully and hand it to ``decode``; errors name the file.

    Args:
        path: The file.
        what: Words for the file in messages, e.g. ``"image"`` or ``"label map"``.
        decode: Turns the loaded ``PIL.Image.Image`` into the result; a ``ValueError`` it raises
            is reported as an unreadable file.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file cannot be decoded (truncated, corrupt, not an image, or refused by
            ``decode``), naming the file.

    Example:
        >>> import tempfile, pathlib
        >>> from PIL import Image
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.png"
        >>> Image.new("L", (3, 2)).save(p)
        >>> read_image_file(p, "image", lambda img: img.size)
        (3, 2)
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        with Image.open(path) as image:
            image.load()
            return decode(image)
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError,
            Image.DecompressionBombError) as e:  # fmt: skip
        raise ValueError(f"cannot read {what} {path}: {e}") from None


def _unwrap(obj: Any) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state"):
            inner = obj.get(key)
            if isinstance(inner, dict) and inner and all(
                isinstance(v, torch.Tensor) for v in inner.values()
            ):
                return inner
        if all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
    raise ValueError(
        "the file does not hold a state dict (a mapping of names to tensors, possibly under "
        "'state_dict' or 'model')"
    )


def torch_load_safely(path: Path, what: str) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, with one clear error for a bad file.

    A truncated or corrupt file, a file that is not a PyTorch file, and one that holds objects
    other than tensors and plain containers (which ``weights_only`` refuses to run) all raise a
    ``ValueError`` naming the file and what is wrong, never suggesting to load it unsafely.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling errors come in many types
        text = str(e)
        if "weights_only" in text or "Unsupported global" in text or "GLOBAL" in text:
            reason = "it holds Python objects other than tensors, which are not loaded (safety)"
        elif isinstance(e, EOFError) or "truncated" in text or "central directory" in text:
            reason = "the file is truncated or corrupt"
        else:
            reason = f"not a PyTorch {what} file ({type(e).__name__}: {text.splitlines()[0][:200]})"
        raise ValueError(f"cannot read {what} {path}: {reason}") from None


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a state dict from ``.safetensors`` or a PyTorch file, safely.

    PyTorch files are read with ``weights_only=True``. A checkpoint that wraps the weights under
    ``"state_dict"`` or ``"model"`` is unwrapped.

    Args:
        path: A ``.safetensors`` file or a ``.pt``/``.pth``/``.bin`` file.

    Returns:
        The state dict, on the CPU.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file is truncated, corrupt, not a weights file, or holds no state dict;
            the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as e:
            raise ValueError(
                f"cannot read weights {path}: not a complete safetensors file ({e})"
            ) from None
    obj = torch_load_safely(path, "weights")
    try:
        return _unwrap(obj)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def save_state_dict_file(state_dict: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """Save a state dict atomically, as safetensors when ``path`` ends in ``.safetensors``.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "w.safetensors"
        >>> save_state_dict_file({"a": torch.ones(2)}, p)
        >>> load_state_dict_file(p)["a"]
        tensor([1., 1.])
    """
    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    if path.suffix == ".safetensors":
        from safetensors.torch import save

        data = save(tensors)
        with atomic_write(path, "wb") as f:
            f.write(data)
    else:
        with atomic_write(path, "wb") as f:
            torch.save(tensors, f)


def bars_off() -> bool:
    """Whether ``TQDM_DISABLE`` asks for no progress bars (tqdm's own variable).

    tqdm reads it only for bars created without an explicit ``disable``; seenet's bars pass one,
    so they ask here too. Worker processes that run side by side set it
    (:func:`seenet.demo.jobs.run_tasks`).
    """
    return os.environ.get("TQDM_DISABLE", "").strip().lower() in ("1", "true", "yes")
