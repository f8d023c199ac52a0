"""Ask a Triton server for ISM scores of one-hot sequences (a .npy of (N, L, 4)) and save them as a .npz.

Runs in any environment with numpy and tritonclient (the server's own has both):
    python examples/triton_client.py examples/seqs.npy --model motif_model_fast -o served.npz
The fast model is asked for every position; each output is saved under its name ("logit__ism": (N, L, 4, 1),
the same array as "logit" in the archive ``onnxism run`` writes). --compare ARCHIVE checks them against it.
"""

import argparse
import sys

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seqs", help=".npy of one-hot sequences (N, L, 4), A C G T")
    parser.add_argument("--model", required=True, help="served model, such as motif_model_fast")
    parser.add_argument("--url", default="127.0.0.1:8000", help="the server's HTTP (or, with --grpc, gRPC) address")
    parser.add_argument("--grpc", action="store_true", help="use gRPC instead of HTTP")
    parser.add_argument("--batch", type=int, default=8, help="sequences per request")
    parser.add_argument("-o", "--output", required=True, help="output .npz")
    parser.add_argument("--compare", default=None, help="an archive of onnxism run to compare the scores with")
    args = parser.parse_args()
    if args.grpc:
        import tritonclient.grpc as client
    else:
        import tritonclient.http as client
    seqs = np.load(args.seqs).astype(np.float32)
    server = client.InferenceServerClient(args.url)
    try:
        metadata = server.get_model_metadata(args.model)
        inputs = [entry["name"] if isinstance(entry, dict) else entry.name for entry in
                  (metadata["inputs"] if isinstance(metadata, dict) else metadata.inputs)]
        parts = {}
        for first in range(0, len(seqs), args.batch):
            block = seqs[first:first + args.batch]
            feeds = {"onehot": block}
            if "positions" in inputs:
                feeds["positions"] = np.tile(np.arange(seqs.shape[1], dtype=np.int64), (len(block), 1))
            request = []
            for name, value in feeds.items():
                tensor = client.InferInput(name, list(value.shape), "FP32" if value.dtype == np.float32 else "INT64")
                tensor.set_data_from_numpy(value)
                request.append(tensor)
            result = server.infer(args.model, request)
            response = result.get_response()
            names = [entry["name"] if isinstance(entry, dict) else entry.name for entry in
                     (response["outputs"] if isinstance(response, dict) else response.outputs)]
            for name in names:
                parts.setdefault(name, []).append(result.as_numpy(name))
    finally:
        server.close()
    served = {name: np.concatenate(values) for name, values in parts.items()}
    np.savez(args.output, **served)
    print(f"saved {', '.join(f'{name} {value.shape}' for name, value in served.items())} to {args.output}")
    if args.compare:
        archive = np.load(args.compare)
        for name, value in served.items():
            if name.endswith("__ism") or name.endswith("__tism"):
                own = archive[name.rsplit("__", 1)[0]]
                same = np.array_equal(own, value)
                print(f"{name}: {'identical to' if same else 'differs from'} {args.compare} "
                      f"(largest difference {np.abs(own - value).max():.3g})")
                if not same:
                    return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
