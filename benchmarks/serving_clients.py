"""Clients of the serving benchmark, run in the server's environment (tritonclient): ``concurrency`` threads, each
with its own HTTP client, each sending ``requests`` requests of ``size`` random sequences to ``model`` at their
first ``count`` positions; prints JSON with every request's latency in seconds and the wall time of the whole."""

import json
import sys
import threading
import time

import numpy as np
import tritonclient.http as http


def main(url, model, concurrency, size, requests, length, count):
    latencies, errors = [], []
    start_line = threading.Barrier(concurrency + 1)

    def client(number):
        rng = np.random.default_rng(number)
        onehot = np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=(size, length))]
        positions = np.tile(np.arange(count, dtype=np.int64), (size, 1))
        server = http.InferenceServerClient(url, connection_timeout=600, network_timeout=600)
        inputs = [http.InferInput("onehot", list(onehot.shape), "FP32"),
                  http.InferInput("positions", list(positions.shape), "INT64")]
        inputs[0].set_data_from_numpy(onehot)
        inputs[1].set_data_from_numpy(positions)
        try:
            server.infer(model, inputs)  # warm-up: connection made, first run of the model
            start_line.wait()
            for _ in range(requests):
                begin = time.perf_counter()
                server.infer(model, inputs).as_numpy("logit__ism")
                latencies.append(time.perf_counter() - begin)
        except Exception as err:  # reported in the JSON
            errors.append(f"{type(err).__name__}: {err}")
        finally:
            server.close()

    threads = [threading.Thread(target=client, args=(number,)) for number in range(concurrency)]
    for thread in threads:
        thread.start()
    start_line.wait()
    begin = time.perf_counter()
    for thread in threads:
        thread.join()
    print(json.dumps({"latencies": latencies, "wall": time.perf_counter() - begin, "errors": errors}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(int(value) for value in sys.argv[3:8]))
