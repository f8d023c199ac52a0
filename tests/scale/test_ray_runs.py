"""Runs sharded over a real local Ray cluster (issue 38): the merged result equals the single-process run bit for
bit; a rerun skips the complete shards and refuses another run's folder; a worker killed mid-shard (SIGKILL, by
the test) is restarted and its shard written once, whole; a driver killed mid-run resumes; bad input is one line.

One cluster for the module: ``ray.init`` with 2 CPUs in this process (its workers are this process's
descendants, which is how the test finds the one to kill), stopped at the end whatever happens; the CLI runs in a
subprocess that joins it by its address. Skipped, saying why, only where Ray cannot start.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import onnxism
from onnxism.scale import ism_on_ray, iter_shards, merge_shards, read_shards, tism_on_ray

from cli_helpers import MODEL, SEQS, assert_clean_failure, onnxism_cli

COUNT, SHARD = 600, 100


@pytest.fixture(scope="module")
def cluster():
    """The address of a 2-CPU Ray cluster started for this module, shut down after it."""
    ray = pytest.importorskip("ray", reason="needs the Ray extra: pip install 'onnxism[ray]'")
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    except Exception as err:  # any reason Ray cannot start on this machine
        pytest.skip(f"Ray cannot start here: {err}")
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def seqs(tmp_path_factory):
    """The example's sequences tiled to COUNT, in a file, and their single-process ISM archive, loaded."""
    folder = tmp_path_factory.mktemp("seqs")
    path = folder / "seqs.npy"
    np.save(path, np.tile(np.load(SEQS), (COUNT // 8 + 1, 1, 1))[:COUNT])
    single = onnxism.ism_to_npz(MODEL, np.load(path), folder / "single.npz")
    with np.load(single) as archive:
        return path, {key: archive[key] for key in archive.files}


def assert_identical(got, wanted):
    assert list(got) == list(wanted)
    for key, value in wanted.items():
        assert got[key].dtype == value.dtype and got[key].shape == value.shape, key
        assert np.array_equal(got[key], value), key


def test_the_merged_shards_equal_the_single_process_run(cluster, seqs, tmp_path):
    path, single = seqs
    folder = ism_on_ray(MODEL, np.load(path, mmap_mode="r"), tmp_path / "run", shard_size=SHARD)
    assert_identical(read_shards(folder), single)
    ranges = [(start, stop) for start, stop, _ in iter_shards(folder)]
    assert ranges == [(start, start + SHARD) for start in range(0, COUNT, SHARD)]
    with np.load(merge_shards(folder, tmp_path / "merged.npz")) as merged:
        assert_identical({key: merged[key] for key in merged.files}, single)


def test_tism_on_ray_equals_the_single_process_run(cluster, seqs, tmp_path):
    onehot = np.load(seqs[0])[:40]
    folder = tism_on_ray(MODEL, onehot, tmp_path / "run", shard_size=15, attribution="gradient_x_input")
    with np.load(onnxism.tism_to_npz(MODEL, onehot, tmp_path / "single.npz", attribution="gradient_x_input")) as one:
        assert_identical(read_shards(folder), {key: one[key] for key in one.files})


def test_a_rerun_scores_only_the_missing_shards_and_refuses_another_run(cluster, seqs, tmp_path):
    path, single = seqs
    onehot = np.load(path)
    folder = ism_on_ray(MODEL, onehot, tmp_path / "run", shard_size=2 * SHARD)
    kept = os.stat(os.path.join(folder, "shard-00000.npz")).st_mtime_ns
    os.remove(os.path.join(folder, "shard-00001.npz"))
    with pytest.raises(onnxism.InputError, match=r"1 of 3 shards are missing \(1\)"):
        read_shards(folder)
    ism_on_ray(MODEL, onehot, folder, shard_size=2 * SHARD)
    assert os.stat(os.path.join(folder, "shard-00000.npz")).st_mtime_ns == kept
    assert_identical(read_shards(folder), single)
    with pytest.raises(onnxism.InputError, match="holds the shards of another run .*options"):
        ism_on_ray(MODEL, onehot, folder, shard_size=2 * SHARD, positions=(0, 100))
    changed = onehot.copy()
    changed[5] = np.roll(changed[5], 1, axis=1)
    with pytest.raises(onnxism.InputError, match="holds the shards of another run .*input"):
        ism_on_ray(MODEL, changed, folder, shard_size=2 * SHARD)


def ray_workers(title):
    """Process ids of this process's descendants whose command line starts with ``title``."""
    table = subprocess.run(["ps", "-e", "-o", "pid=,ppid=,args="], capture_output=True, text=True).stdout
    children = {}
    for line in table.splitlines():
        pid, ppid, *args = line.split(None, 2)
        children.setdefault(int(ppid), []).append((int(pid), args[0] if args else ""))
    found, stack = [], [os.getpid()]
    while stack:
        for pid, args in children.get(stack.pop(), []):
            stack.append(pid)
            if args.startswith(title):
                found.append(pid)
    return found


def start_cli(cluster, seqs, output, *extra):
    """``onnxism run --ray`` in a subprocess, once the actors of the tests before have exited."""
    wait_for(lambda: not ray_workers("ray::ShardScorer"))
    return subprocess.Popen([sys.executable, "-m", "onnxism", "run", MODEL, str(seqs), "-o", str(output), "--ray",
                             cluster, "--shard-size", str(SHARD), "--actors", "2", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_a_worker_killed_mid_shard_loses_nothing(cluster, seqs, tmp_path):
    """SIGKILL to an actor's process while it scores a shard: Ray restarts it, retries the shard, and the merged
    archive is complete and identical, and the restarted actor (a new process) wrote shards."""
    path, single = seqs
    output = tmp_path / "out.npz"
    run = start_cli(cluster, path, output, "--keep-shards")
    try:
        busy = wait_for(lambda: ray_workers("ray::ShardScorer.score"))
        actors = set(ray_workers("ray::ShardScorer"))
        os.kill(busy[0], signal.SIGKILL)
        assert wait_for(lambda: busy[0] not in ray_workers("ray::"))
        _, stderr = run.communicate(timeout=120)
    finally:
        run.kill()
    assert run.returncode == 0, stderr
    with np.load(output) as merged:
        assert_identical({key: merged[key] for key in merged.files}, single)
    with open(tmp_path / "out.npz.shards" / "manifest.json") as handle:
        completed = json.load(handle)["completed"]
    assert len(completed) == COUNT // SHARD
    writers = {report["pid"] for report in completed.values()}
    # the shard it was scoring was written by the actor Ray restarted in its place, a process not there before
    assert writers - actors, (busy, actors, writers)


def test_a_killed_driver_resumes_from_the_complete_shards(cluster, seqs, tmp_path):
    path, single = seqs
    output = tmp_path / "out.npz"
    shards = tmp_path / "out.npz.shards"
    run = start_cli(cluster, path, output)
    try:
        wait_for(lambda: shards.is_dir() and len([name for name in os.listdir(shards) if name.endswith(".npz")]) >= 2)
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=30)
    finally:
        run.kill()
    assert not output.exists()
    done = {name: os.stat(shards / name).st_mtime_ns for name in os.listdir(shards) if name.endswith(".npz")}
    result = onnxism_cli("run", MODEL, path, "-o", output, "--ray", cluster, "--shard-size", SHARD, "--keep-shards")
    assert result.returncode == 0, result.stderr
    assert all(os.stat(shards / name).st_mtime_ns == mtime for name, mtime in done.items())
    with np.load(output) as merged:
        assert_identical({key: merged[key] for key in merged.files}, single)


def test_bad_input_is_one_line_and_leaves_nothing(tmp_path):
    output = tmp_path / "out.npz"
    result = onnxism_cli("run", MODEL, SEQS, "-o", output, "--ray", "127.0.0.1:1")
    assert_clean_failure(result, "cannot reach the Ray cluster at 127.0.0.1:1")
    assert_clean_failure(onnxism_cli("run", MODEL, SEQS, "-o", output, "--actors", "2"), "--actors applies to --ray")
    assert os.listdir(tmp_path) == []
    with pytest.raises(onnxism.InputError, match="holds no manifest.json"):
        read_shards(tmp_path)


def test_a_missing_ray_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(onnxism.MissingExtraError, match=r"pip install 'onnxism\[ray\]'"):
        ism_on_ray(MODEL, np.load(SEQS), tmp_path / "run")
