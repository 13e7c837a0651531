"""focal.engine.system: the device, usable cores and the hardware line."""
import pytest
import torch

from focal.engine.system import (RUNS_PER_GPU, cuda_unavailable_reason, default_workers, hardware, resolve_device,
                                 usable_cores, worker_devices)


def test_default_workers():
    assert default_workers(1) == 1 and default_workers(2) == 2
    with pytest.raises(ValueError, match="device"):
        default_workers(2, "tpu")


def test_several_runs_share_each_gpu_and_the_runs_spread_over_the_gpus():
    assert RUNS_PER_GPU > 1
    assert default_workers(8, "cuda", gpus=1) == RUNS_PER_GPU and default_workers(8, "cuda", gpus=8) == 8 * RUNS_PER_GPU
    assert default_workers(8, "cuda:5", gpus=8) == RUNS_PER_GPU  # one named GPU
    devices = worker_devices("cuda", 3 * RUNS_PER_GPU, gpus=3)
    assert {d: devices.count(d) for d in set(devices)} == {f"cuda:{i}": RUNS_PER_GPU for i in range(3)}
    assert worker_devices("cuda:2", 3, gpus=4) == ["cuda:2"] * 3
    assert worker_devices("cpu", 3) is None
    with pytest.raises(ValueError, match="device"):
        worker_devices("tpu", 2)


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
        with pytest.raises(ValueError, match="CUDA is not available: this torch .*--device cpu"):
            resolve_device("cuda:0")


@pytest.mark.parametrize("build, says", [(None, "CPU-only build. Install the CUDA build of the same version"),
                                          ("13.0", "built for CUDA 13.0, but it finds no usable GPU")])
def test_the_reason_cuda_is_unavailable_names_the_build_and_the_fix(monkeypatch, build, says):
    """A CPU wheel needs the +cuXYZ build of the same torch; a CUDA build without a GPU needs a visible GPU or a newer
    driver. The message of a cuda device without CUDA carries the reason."""
    monkeypatch.setattr(torch.version, "cuda", build)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert says in cuda_unavailable_reason() and torch.__version__ in cuda_unavailable_reason()
    assert "nvidia-smi" in cuda_unavailable_reason()
    with pytest.raises(ValueError, match=f"device='cuda' but CUDA is not available: .*{says.split('.')[0]}"):
        resolve_device("cuda")
