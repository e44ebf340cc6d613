from __future__ import annotations

import pytest
import torch

from seenet._io import atomic_write, load_state_dict_file, save_state_dict_file
from seenet._validation import check_tensor, check_thresholds


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_state_dict_round_trip(tmp_path, suffix):
    sd = {"w": torch.randn(3, 4), "b": torch.arange(5)}
    path = tmp_path / f"m{suffix}"
    save_state_dict_file(sd, path)
    back = load_state_dict_file(path)
    assert set(back) == set(sd) and all(torch.equal(back[k], sd[k]) for k in sd)


def test_load_unwraps_checkpoint_and_refuses_pickled_code(tmp_path):
    path = tmp_path / "ckpt.pt"
    torch.save({"model": {"w": torch.ones(2)}, "iteration": 3}, path)
    assert torch.equal(load_state_dict_file(path)["w"], torch.ones(2))

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    bad = tmp_path / "bad.pt"
    torch.save({"w": Evil()}, bad)
    with pytest.raises(ValueError, match=r"bad\.pt: it holds Python objects") as caught:
        load_state_dict_file(bad)
    assert "weights_only=False" not in str(caught.value)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_state_dict_file(tmp_path / "missing.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="state dict"):
        load_state_dict_file(tmp_path / "list.pt")


def test_atomic_write_leaves_nothing_on_crash(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_write(target) as f:
        f.write(b"partial")
        raise RuntimeError("crash")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_check_helpers_messages():
    with pytest.raises(ValueError, match=r"features must have shape \(N, C\)"):
        check_tensor(torch.zeros(2), "features", ("N", "C"))
    with pytest.raises(ValueError, match="dimension 1 must be 1"):
        check_tensor(torch.zeros(2, 3), "attention", ("N", 1))
    with pytest.raises(ValueError, match="torch.Tensor"):
        check_tensor([1, 2], "x", ("N",))
    with pytest.raises(ValueError, match="delta_high"):
        check_thresholds(True, 0.1)
