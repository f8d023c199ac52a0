"""Queries for the served-model tests, run in the server's environment (numpy < 2, tritonclient): concurrent
clients over HTTP and gRPC, and bad requests. Writes what it sent and got to an .npz or prints JSON."""

import json
import sys
import threading

import numpy as np
import tritonclient.grpc as grpc
import tritonclient.http as http

_TYPES = {np.dtype(np.float32): "FP32", np.dtype(np.int64): "INT64", np.dtype(np.uint8): "UINT8"}


def infer(module, url, model, feeds, outputs):
    client = module.InferenceServerClient(url)
    try:
        request = []
        for name, value in feeds.items():
            tensor = module.InferInput(name, list(value.shape), _TYPES[value.dtype])
            tensor.set_data_from_numpy(value)
            request.append(tensor)
        result = client.infer(model, request)
        return {name: result.as_numpy(name) for name in outputs}
    finally:
        client.close()


def concurrent(http_url, grpc_url, seqs_path, out_path, clients, requests_each):
    """``clients`` threads, half HTTP and half gRPC, each sending ``requests_each`` requests of 1-5 sequences with
    their own random positions to the fast model, and one to the tism, predict and codes models."""
    seqs = np.load(seqs_path).astype(np.float32)
    length = seqs.shape[1]
    sent, errors = {}, []

    def client(number):
        module, url = (http, http_url) if number % 2 == 0 else (grpc, grpc_url)
        rng = np.random.default_rng(number)
        try:
            for request in range(requests_each):
                rows = rng.integers(0, len(seqs), size=rng.integers(1, 6))
                positions = rng.integers(-length, length, size=(len(rows), 7)).astype(np.int64)
                got = infer(module, url, "served_fast", {"onehot": seqs[rows], "positions": positions},
                            ["logit", "logit__ism"])
                sent[f"fast_{number}_{request}"] = (rows, positions, got)
            rows = rng.integers(0, len(seqs), size=3)
            sent[f"tism_{number}"] = (rows, None, infer(module, url, "served_tism", {"onehot": seqs[rows]},
                                                        ["logit", "logit__tism"]))
            sent[f"predict_{number}"] = (rows, None, infer(module, url, "served_predict", {"onehot": seqs[rows]},
                                                           ["logit"]))
            codes = seqs[rows].argmax(-1).astype(np.uint8)
            codes[seqs[rows].sum(-1) == 0] = 4
            positions = np.tile(np.arange(length, dtype=np.int64), (len(rows), 1))
            sent[f"codes_{number}"] = (rows, positions, infer(module, url, "codes_fast",
                                                              {"codes": codes, "positions": positions},
                                                              ["logit", "logit__ism"]))
        except Exception as err:  # reported to the test
            errors.append(f"client {number}: {type(err).__name__}: {err}")

    threads = [threading.Thread(target=client, args=(number,)) for number in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    arrays = {}
    for key, (rows, positions, got) in sent.items():
        arrays[f"{key}/rows"] = rows
        if positions is not None:
            arrays[f"{key}/positions"] = positions
        for name, value in got.items():
            arrays[f"{key}/{name}"] = value
    np.savez(out_path, **arrays)
    print(json.dumps({"errors": errors, "requests": len(sent)}))


def bad_requests(http_url, grpc_url, seqs_path):
    """Each bad request's error message, and whether a good request was answered after each."""
    seqs = np.load(seqs_path).astype(np.float32)[:2]
    length = seqs.shape[1]
    every = np.tile(np.arange(length, dtype=np.int64), (2, 1))
    halves = seqs.copy()
    halves[0, 3] = 0.5
    cases = {
        "wrong_shape": {"onehot": seqs[:, :-1], "positions": every[:, :-1]},
        "not_one_hot": {"onehot": halves, "positions": every},
        "out_of_range": {"onehot": seqs, "positions": every + 1},
        "empty_batch": {"onehot": seqs[:0], "positions": every[:0]},
        "too_many_sequences": {"onehot": np.repeat(seqs, 20, axis=0), "positions": np.repeat(every, 20, axis=0)},
        "too_many_positions": {"onehot": seqs, "positions": np.concatenate([every, every], axis=1)},
        "rows_differ": {"onehot": seqs, "positions": every[:1]},
    }
    report = {}
    for case, feeds in cases.items():
        for module, url in ((http, http_url), (grpc, grpc_url)):
            key = f"{case}/{module.__name__.split('.')[-1]}"
            try:
                infer(module, url, "served_fast", feeds, ["logit__ism"])
                report[key] = {"error": None}
            except Exception as err:
                report[key] = {"error": str(err)}
            good = infer(module, url, "served_fast", {"onehot": seqs, "positions": every}, ["logit__ism"])
            report[key]["then_served"] = list(good["logit__ism"].shape)
    print(json.dumps(report))


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "concurrent":
        concurrent(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]), int(sys.argv[7]))
    else:
        bad_requests(sys.argv[2], sys.argv[3], sys.argv[4])
