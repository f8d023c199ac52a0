"""load(): sequence input and layout detection, header repairs, and clear errors for unusable models."""

import numpy as np
import onnx
import pytest

import onnxism
from onnxism.runtime.sessions import MAX_IR_VERSION

from conftest import random_onehot
from onnx_builders import conv_model


@pytest.mark.parametrize("layout", ["NLC", "NCL"])
def test_layout_detected_and_predictions_agree(layout):
    model = onnxism.load(conv_model(layout=layout))
    assert (model.layout, model.length, model.input_name, model.output_names) == (layout, 20, "x", ["y"])
    seqs = random_onehot(3, 20)
    got = onnxism.predict(model, seqs)["y"]
    # independent: the same conv in NumPy
    init = {i.name: onnx.numpy_helper.to_array(i) for i in model.proto.graph.initializer}
    padded = np.pad(seqs, ((0, 0), (2, 2), (0, 0)))
    conv = np.stack([np.einsum("nkc,ock->no", padded[:, i:i + 5], init["w"]) for i in range(20)], axis=2)
    expected = np.maximum(conv + init["b"][None, :, None], 0).mean(axis=2)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_layout_override_and_input_by_name():
    model = onnxism.load(conv_model(layout="NCL"), input="x", layout="channels_first")
    assert model.layout == "NCL"
    with pytest.raises(onnxism.ModelError, match="no input named 'nope'"):
        onnxism.load(conv_model(), input="nope")
    with pytest.raises(onnxism.ModelError, match="axis 1 .* has size 20"):
        onnxism.load(conv_model(layout="NLC"), layout="NCL")


def test_ambiguous_layout_needs_an_explicit_choice():
    with pytest.raises(onnxism.ModelError, match="cannot tell the layout"):
        onnxism.load(conv_model(layout="NLC", length=4))
    assert onnxism.load(conv_model(layout="NLC", length=4), layout="NLC").layout == "NLC"


def test_ir_version_newer_than_onnxruntime_reads_is_repaired(tmp_path):
    proto = conv_model(ir_version=14)
    path = tmp_path / "new_ir.onnx"
    onnx.save(proto, path)
    model = onnxism.load(path)
    assert model.proto.ir_version == MAX_IR_VERSION
    assert onnxism.predict(model, random_onehot(2, 20))["y"].shape == (2, 3)


def test_opset_too_new_is_refused():
    with pytest.raises(onnxism.ModelError, match="opset 30"):
        onnxism.load(conv_model(opset=30))


def test_dilated_same_conv_from_legacy_torch_export_is_repaired(tmp_path):
    """torch's legacy exporter writes auto_pad=SAME_UPPER on dilated convs, which onnxruntime refuses."""
    torch = pytest.importorskip("torch")
    module = torch.nn.Sequential(torch.nn.Conv1d(4, 3, 4, padding="same", dilation=3), torch.nn.Flatten()).eval()
    path = tmp_path / "legacy.onnx"
    torch.onnx.export(module, (torch.zeros(2, 4, 30),), path, dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "n"}})
    raw = onnx.load(path)
    assert any(a.name == "auto_pad" and a.s.startswith(b"SAME") for n in raw.graph.node for a in n.attribute)
    seqs = random_onehot(3, 30)
    got = onnxism.predict(path, seqs)
    with torch.no_grad():
        expected = module(torch.from_numpy(seqs.transpose(0, 2, 1).copy())).numpy()
    np.testing.assert_allclose(next(iter(got.values())), expected, rtol=1e-5, atol=1e-5)


def test_erfc_from_tf2onnx_is_rewritten_as_one_minus_erf():
    """tf2onnx writes Keras 3's exact GELU with Erfc, an op no ONNX opset has (onnxruntime refuses the model)."""
    import math

    from onnx import TensorProto, helper

    nodes = [helper.make_node("Erfc", ["x"], ["y"], name="gelu/Erfc")]
    graph = helper.make_graph(nodes, "erfc", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 6, 4])])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    seqs = random_onehot(2, 6)
    got = onnxism.predict(proto, seqs)["y"]
    np.testing.assert_allclose(got, np.vectorize(math.erfc)(seqs), rtol=0, atol=1e-6)


def test_fixed_batch_model_runs_in_batches_of_its_size():
    model = onnxism.load(conv_model(batch=2, baked_batch=True))
    assert model.fixed_batch == 2 and model.exported_batch is None
    seqs = random_onehot(5, 20)
    dynamic = onnxism.predict(conv_model(), seqs)["y"]
    np.testing.assert_allclose(onnxism.predict(model, seqs)["y"], dynamic, rtol=1e-6)
    np.testing.assert_allclose(onnxism.ism(model, seqs[:2])["y"], onnxism.ism(conv_model(), seqs[:2])["y"],
                               rtol=1e-5, atol=1e-6)


def test_dynamic_length_model_takes_the_length_of_the_sequences():
    model = onnxism.load(conv_model(length="L"))
    assert model.length is None
    assert onnxism.predict(model, random_onehot(2, 33))["y"].shape == (2, 3)


def test_external_data_is_loaded(tmp_path):
    proto = conv_model()
    onnx.save(proto, tmp_path / "ext.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
              location="ext.data", size_threshold=0)
    assert (tmp_path / "ext.data").exists()
    seqs = random_onehot(2, 20)
    np.testing.assert_allclose(onnxism.predict(tmp_path / "ext.onnx", seqs)["y"],
                               onnxism.predict(conv_model(), seqs)["y"], rtol=1e-6)


def test_models_with_other_inputs_list_them():
    model = onnxism.load(conv_model(extra_input=True))
    assert model.input_name == "x" and [(extra.name, extra.shape) for extra in model.extra_inputs] == [("extra", (2,))]


def test_no_plausible_sequence_input():
    proto = conv_model()
    proto.graph.input[0].type.tensor_type.shape.dim[2].dim_value = 5
    with pytest.raises(onnxism.ModelError, match="no plausible sequence input.*x \\(N, 20, 5\\)"):
        onnxism.load(proto)


def test_files_that_are_not_models(tmp_path):
    with pytest.raises(onnxism.InputError, match="model file not found"):
        onnxism.load(tmp_path / "missing.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00\xffnot a protobuf at all" * 10)
    with pytest.raises(onnxism.ModelError, match="not an ONNX model"):
        onnxism.load(garbage)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(onnxism.ModelError, match="not an ONNX model"):
        onnxism.load(empty)
    with pytest.raises(onnxism.InputError, match="model file is a folder, expected an .onnx file"):
        onnxism.load(tmp_path)


def test_unknown_output_names_are_refused():
    with pytest.raises(onnxism.InputError, match="unknown output name 'z'; the model's outputs are: y"):
        onnxism.predict(conv_model(), random_onehot(1, 20), outputs=["z"])
