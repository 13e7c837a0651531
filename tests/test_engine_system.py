"""focal.engine.system: the device, usable cores and the hardware line."""
import pytest
import torch

from focal.engine.system import default_workers, hardware, resolve_device, usable_cores


def test_default_workers():
    assert default_workers(1) == 1 and default_workers(2) == 2 and default_workers(8, "cuda") == 1
    with pytest.raises(ValueError, match="device"):
        default_workers(2, "tpu")


def test_hardware_line_names_the_cpu_threads_and_torch():
    torch_threads = torch.get_num_threads()
    text = hardware("cpu")
    assert text.startswith("CPU: ") and text.endswith(f"torch {torch.__version__}")
    assert f"({torch_threads} thread{'s' * (torch_threads != 1)})" in text
    assert hardware("cpu", world_size=2).startswith("2 x CPU: ")


def test_resolve_device_never_falls_back_silently():
    assert resolve_device("cpu") == torch.device("cpu") and usable_cores() >= 1
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device must be auto, cpu, cuda or cuda:N, got 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available here; use --device cpu"):
            resolve_device("cuda:0")
