"""Teacher training under torch.distributed with two gloo processes on the CPU."""

import os
import signal
import subprocess
import time

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as multiprocessing

from pipeline_copy import TINY_PARAMS, make_pipeline_copy, merge, run, tool_environment
from privgen.data import ImageSet
from privgen.distributed import ProcessGroup
from privgen.teacher import TeacherConfig, TeacherTrainer, load_checkpoint

BATCH = 6  # images per process


def tiny_set():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(40, 1, 28, 28), dtype=np.uint8)
    return ImageSet(images, np.arange(40, dtype=np.int64) % 4, ["a", "b", "c", "d"])


def fixed_inputs():
    """Real and fake images, labels and interpolation weights for both processes together."""
    generator = torch.Generator().manual_seed(7)
    real = torch.rand(2 * BATCH, 1, 28, 28, generator=generator) * 2 - 1
    fake = torch.rand(2 * BATCH, 1, 28, 28, generator=generator) * 2 - 1
    labels = torch.randint(0, 4, (2 * BATCH,), generator=generator)
    mix = torch.rand(2 * BATCH, 1, 1, 1, generator=generator)
    return real, fake, labels, mix


def config():
    # sigma = 0: no DP noise, so both runs compute the same function.
    return TeacherConfig(sigma=0.0, width=4, batch_size=BATCH, seed=5)


def critic_gradients(trainer, part):
    inputs = [tensor[part] for tensor in fixed_inputs()]
    trainer.critic_optimizer.zero_grad(set_to_none=True)
    trainer.critic_loss(*inputs)["critic_loss"].backward()
    return {name: parameter.grad.clone() for name, parameter in trainer.critic.named_parameters()}


def ddp_worker(rank, store_file, output_dir):
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    dist.init_process_group("gloo", init_method=f"file://{store_file}", rank=rank, world_size=2)
    trainer = TeacherTrainer(config(), tiny_set(), torch.device("cpu"), ProcessGroup(rank, rank, 2))
    gradients = critic_gradients(trainer, slice(rank * BATCH, (rank + 1) * BATCH))
    torch.save(gradients, os.path.join(output_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


def test_ddp_critic_gradients_equal_single_process(tmp_path):
    multiprocessing.spawn(ddp_worker, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    single = critic_gradients(TeacherTrainer(config(), tiny_set(), torch.device("cpu")), slice(0, 2 * BATCH))
    for rank in (0, 1):
        distributed = torch.load(tmp_path / f"rank{rank}.pt")
        for name, gradient in single.items():
            assert torch.allclose(distributed[name], gradient, atol=1e-6, rtol=1e-4), f"rank {rank}, {name}"


@pytest.fixture(scope="module")
def prepared_copy(tmp_path_factory):
    repo = make_pipeline_copy(tmp_path_factory.mktemp("repo"))
    run(["python", "-m", "stages.prepare"], repo)
    return repo


def test_torchrun_launcher_trains_two_gloo_processes(tmp_path):
    repo = make_pipeline_copy(tmp_path / "repo", merge(TINY_PARAMS, {"launcher": "torchrun --standalone --nproc_per_node=2"}))
    environment = {**tool_environment(), "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(["dvc", "repro", "train_teacher"], cwd=repo, env=environment, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    state = load_checkpoint(repo / "models/teacher.pt")
    assert state["world_size"] == 2
    assert state["iteration"] == TINY_PARAMS["gan"]["iterations"]
    assert len(state["random_states"]) == 2
    # Only rank 0 logs: one line for the last interval, not two.
    last = TINY_PARAMS["gan"]["iterations"]
    assert (result.stdout + result.stderr).count(f"iteration {last}/{last}") == 1


def train_command(output):
    return [
        "python", "-m", "stages.train_teacher", "--iterations", "40", "--width", "4", "--batch_size", "8",
        "--log_interval", "5", "--checkpoint_interval", "5", "--device", "cpu", "--output", output,
        "--checkpoint_dir", "models/resume_checkpoints", "--metrics", "metrics/resume.json",
    ]  # fmt: skip


def test_interrupted_stage_resumes_to_same_weights(prepared_copy):
    run(train_command("models/uninterrupted.pt"), prepared_copy)
    # The uninterrupted run left its checkpoint; remove it so the next run starts from scratch.
    for checkpoint in (prepared_copy / "models/resume_checkpoints").glob("*.pt"):
        checkpoint.unlink()

    process = subprocess.Popen(train_command("models/resumed.pt"), cwd=prepared_copy, env=tool_environment(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while not list((prepared_copy / "models/resume_checkpoints").glob("*.pt")) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=120)
    assert process.returncode != 0
    checkpoint = next((prepared_copy / "models/resume_checkpoints").glob("*.pt"))
    stopped_at = load_checkpoint(checkpoint)["iteration"]
    assert 0 < stopped_at < 40
    assert not (prepared_copy / "models/resumed.pt").exists()

    result = run(train_command("models/resumed.pt"), prepared_copy)
    assert "resuming from" in result.stderr
    assert f"at iteration {stopped_at}" in result.stderr
    uninterrupted = load_checkpoint(prepared_copy / "models/uninterrupted.pt")
    resumed = load_checkpoint(prepared_copy / "models/resumed.pt")
    assert resumed["iteration"] == 40
    for part in ("generator", "critic"):
        for name, value in uninterrupted[part].items():
            assert torch.equal(value, resumed[part][name]), f"{part}.{name}"


def test_stage_rejects_checkpoint_of_other_run(prepared_copy):
    from privgen.data import load_image_set
    from privgen.teacher import TeacherTrainer

    folder = prepared_copy / "models/foreign_checkpoints"
    concat = train_command("models/concat.pt")
    concat[concat.index("--checkpoint_dir") + 1] = str(folder)
    concat[concat.index("--iterations") + 1] = "5"
    run(concat + ["--conditioning", "concat"], prepared_copy)
    (written,) = folder.glob("*.pt")

    # Put the concat run's checkpoint where a projection run of the same data looks for its own.
    projection_config = TeacherConfig(iterations=5, width=4, batch_size=8, seed=42, conditioning="projection")
    trainer = TeacherTrainer(projection_config, load_image_set(prepared_copy / "data/prepared/train.npz"), torch.device("cpu"))
    target = trainer.checkpoint_path(folder)
    written.rename(target)
    before = target.read_bytes()

    projection = train_command("models/projection.pt")
    projection[projection.index("--checkpoint_dir") + 1] = str(folder)
    projection[projection.index("--iterations") + 1] = "5"
    result = run(projection + ["--conditioning", "projection"], prepared_copy, check=False)
    assert result.returncode == 1
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1
    assert "conditioning 'concat'" in error_lines[0]
    assert "delete it to start a new run" in error_lines[0]
    assert target.read_bytes() == before
    assert not (prepared_copy / "models/projection.pt").exists()
