"""Several onnxruntime calls in flight (``runtime/workers.py``): the same numbers as one at a time, in order."""

import threading
import time

import numpy as np
import pytest

import onnxism
from onnxism.fast.executor import FastISM, compiled_plan
from onnxism.methods.naive import NaiveISM
from onnxism.runtime.workers import resolve_workers, run_in_order, session_threads, usable_cores

from conftest import random_onehot
from onnx_builders import wrapped_residual_model


@pytest.mark.parametrize("method", ["naive", "fast"])
def test_workers_give_the_same_scores_as_one_call_at_a_time(method):
    """Small batches and several sequences, so that many calls overlap and each thread binds its own inputs; a
    shared binding or an out-of-order scatter would mix rows between batches."""
    model = onnxism.load(wrapped_residual_model(length=40))
    seqs = random_onehot(5, 40, seed=31, n_fraction=0.05)
    one = onnxism.ism(model, seqs, method=method, batch_size=7, workers=1)
    four = onnxism.ism(model, seqs, method=method, batch_size=7, workers=4)
    assert one.keys() == four.keys()
    for name in one:
        assert np.abs(one[name]).max() > 0
        np.testing.assert_array_equal(four[name], one[name], err_msg=name)


def test_run_in_order_consumes_in_submission_order_on_the_calling_thread():
    caller = threading.get_ident()
    seen, threads = [], set()

    def work(job):
        time.sleep(0.002 * (job % 3))  # later jobs often finish first
        threads.add(threading.get_ident())
        return job * job

    def consume(job, result):
        assert threading.get_ident() == caller
        seen.append((job, result))

    run_in_order(range(20), work, consume, workers=3)
    assert seen == [(job, job * job) for job in range(20)]
    assert caller not in threads


def test_run_in_order_raises_the_first_failure_and_stops_consuming():
    seen = []

    def work(job):
        if job == 5:
            raise ValueError("job 5 failed")
        return job

    with pytest.raises(ValueError, match="job 5 failed"):
        run_in_order(range(100), work, lambda job, result: seen.append(job), workers=2)
    assert seen == [0, 1, 2, 3, 4]


def test_default_workers_and_threads():
    model = onnxism.load(wrapped_residual_model(length=12))
    shapes = model.output_shapes(12)
    assert NaiveISM(model, model.output_names, shapes, (0, 12)).workers == 1
    compiled = compiled_plan(model, 12, model.output_names)
    assert FastISM(model, compiled, model.output_names, shapes, (0, 12)).workers == min(2, usable_cores())
    cores = usable_cores()
    assert resolve_workers(None, "cpu") == 1
    assert resolve_workers(None, "cpu", cpu_default=2) == min(2, cores)
    assert resolve_workers(None, "cuda", cpu_default=2) == 1
    assert resolve_workers(3, "cpu") == 3
    assert session_threads(1, "cpu") is None  # onnxruntime's own default
    assert session_threads(2, "cuda") is None
    assert session_threads(2, "cpu") == max(1, cores // 2)


def test_each_worker_count_keeps_its_sessions_and_the_plan_lets_its_graphs_go():
    """Sessions are kept per thread count (workers 1: onnxruntime's default threads; 2: cores // 2); once they
    exist the plan holds no graphs (the sessions hold the weights). The results do not depend on it."""
    model = onnxism.load(wrapped_residual_model(length=12))
    seqs = random_onehot(1, 12, seed=2)
    one = onnxism.ism(model, seqs, workers=1)
    two = onnxism.ism(model, seqs, workers=2)
    onnxism.ism(model, seqs, workers=2)
    compiled = model.cache.fast_plans
    assert len(compiled) == 2
    assert all(sorted(vars(entry)) == ["ism", "plan", "reference", "weight_rows"] for entry in compiled.values())
    for name in one:
        np.testing.assert_allclose(two[name], one[name], rtol=0, atol=1e-5)
