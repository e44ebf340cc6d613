"""``python -m seenet.cli``: the ``seenet`` command (also usable as ``torchrun -m seenet.cli``)."""

from __future__ import annotations

from seenet.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
