"""The model.py of a served graph for Triton's python backend (``onnxism export triton --backend python``): the
same compiled ONNX file, run by onnxruntime inside the server, with every request checked first.

This file is copied into the model repository and runs in the server's environment, which has numpy, onnxruntime
and Triton's ``triton_python_backend_utils`` but not onnxism: it imports nothing else.

Invariant: a request that breaks the contract (shape, non-one-hot rows, positions out of range, an empty batch,
more positions than the limit) gets an error response naming the problem; the other requests of the same batch
are answered, and the model keeps serving. Requests whose inputs have the same shapes after the batch axis are run
as one batch.
"""

import json
import os

import numpy as np
import onnxruntime
import triton_python_backend_utils as pb_utils


class RequestError(Exception):
    """A request that breaks the serving contract."""


def _error(message, bad_request=True):
    """An error response: the client's fault (HTTP 400) or the server's."""
    code = getattr(pb_utils.TritonError, "INVALID_ARG" if bad_request else "INTERNAL", None)
    error = pb_utils.TritonError(message) if code is None else pb_utils.TritonError(message, code)
    return pb_utils.InferenceResponse(output_tensors=[], error=error)


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        parameters = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        self.length = int(parameters["sequence_length"])
        self.max_positions = int(parameters.get("max_positions", self.length))
        self.inputs = [entry["name"] for entry in config["input"]]
        self.outputs = [entry["name"] for entry in config["output"]]
        self.max_batch = int(config.get("max_batch_size", 0))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = int(parameters.get("intra_op_threads", "0"))
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        self.session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    def execute(self, requests):
        responses = [None] * len(requests)
        groups = {}
        for index, request in enumerate(requests):
            try:
                feeds = self._checked(request)
            except RequestError as err:
                responses[index] = _error(str(err))
                continue
            key = tuple((name, feeds[name].shape[1:], feeds[name].dtype.str) for name in self.inputs)
            groups.setdefault(key, []).append((index, feeds))
        for members in groups.values():
            rows = [len(feeds[self.inputs[0]]) for _, feeds in members]
            joined = {name: np.concatenate([feeds[name] for _, feeds in members]) for name in self.inputs}
            try:
                values = self.session.run(self.outputs, joined)
            except Exception as err:  # onnxruntime's own exception types: answer each request, keep serving
                for index, _ in members:
                    responses[index] = _error(f"onnxruntime failed: {err}", bad_request=False)
                continue
            first = 0
            for (index, _), count in zip(members, rows):
                tensors = [pb_utils.Tensor(name, np.ascontiguousarray(value[first:first + count]))
                           for name, value in zip(self.outputs, values)]
                responses[index] = pb_utils.InferenceResponse(output_tensors=tensors)
                first += count
        return responses

    def _checked(self, request):
        """The request's inputs as arrays, or RequestError naming what breaks the contract."""
        feeds = {}
        for name in self.inputs:
            tensor = pb_utils.get_input_tensor_by_name(request, name)
            if tensor is None:
                raise RequestError(f"input {name!r} is missing")
            feeds[name] = tensor.as_numpy()
        count = len(feeds[self.inputs[0]])
        if count == 0:
            raise RequestError("the request has no sequences (an empty batch)")
        if self.max_batch and count > self.max_batch:
            raise RequestError(f"the request has {count} sequences; the limit is {self.max_batch} per request")
        for name, value in feeds.items():
            if len(value) != count:
                raise RequestError(f"input {name!r} has {len(value)} rows; the sequences are {count}")
        if "onehot" in feeds:
            onehot = feeds["onehot"]
            if onehot.shape[1:] != (self.length, 4):
                raise RequestError(f"onehot has shape {onehot.shape}; need (n, {self.length}, 4)")
            if not np.isin(onehot, (0.0, 1.0)).all() or (onehot.sum(axis=2) > 1).any():
                raise RequestError("onehot has rows that are not one-hot (each base: one 1 and three 0s, or all 0 "
                                   "for N)")
        if "codes" in feeds and feeds["codes"].shape[1:] != (self.length,):
            raise RequestError(f"codes has shape {feeds['codes'].shape}; need (n, {self.length})")
        if "positions" in feeds:
            positions = feeds["positions"]
            if positions.ndim != 2 or positions.shape[1] == 0:
                raise RequestError(f"positions has shape {positions.shape}; need (n, P) with P >= 1")
            if positions.shape[1] > self.max_positions:
                raise RequestError(f"the request asks for {positions.shape[1]} positions per sequence; the limit is "
                                   f"{self.max_positions}")
            if ((positions < -self.length) | (positions >= self.length)).any():
                raise RequestError(f"positions must lie in [-{self.length}, {self.length}) for sequences of length "
                                   f"{self.length}")
        return feeds
