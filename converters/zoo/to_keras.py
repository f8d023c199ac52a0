"""Build a :class:`~onnxism_converters.zoo.spec.Spec` as a functional Keras model taking (N, L, 4), with its weights."""




def build_keras(spec):
    """A functional ``keras.Model``; outputs named as in ``spec.outputs``."""
    import keras
    from keras import layers

    values = [keras.Input(shape=(spec.length, 4), name="seqs")]
    output_of = {node: name for name, node in spec.outputs.items()}
    for index, layer in enumerate(spec.layers[1:], start=1):
        p, w = layer.params, layer.weights
        kind = layer.kind
        name = output_of.get(index, f"{kind}_{index}")
        args = [values[i] for i in layer.inputs]
        if kind == "conv":
            module = layers.Conv1D(p["filters"], p["kernel"], strides=p["stride"], padding=p["padding"],
                                   dilation_rate=p["dilation"], name=name)
            out = module(args[0])
            module.set_weights([w["w"].transpose(2, 1, 0), w["b"]])
        elif kind == "conv_transpose":
            # as 2-D on (L, 1, C), the form BPNet uses (and the one fastISM accepts), then back to (L, filters)
            channels = w["w"].shape[0]
            module = layers.Conv2DTranspose(p["filters"], (p["kernel"], 1), padding="same", name=name)
            out = module(layers.Reshape((-1, 1, channels), name=f"{name}_to2d")(args[0]))
            module.set_weights([w["w"].transpose(2, 1, 0)[:, None], w["b"]])
            out = layers.Reshape((-1, p["filters"]), name=f"{name}_to1d")(out)
        elif kind == "batch_norm":
            module = layers.BatchNormalization(epsilon=p["eps"], name=name)
            out = module(args[0])
            module.set_weights([w["gamma"], w["beta"], w["mean"], w["var"]])
        elif kind == "dense":
            module = layers.Dense(p["units"], name=name)
            out = module(args[0])
            module.set_weights([w["w"].T, w["b"]])
        elif kind == "add":
            out = layers.Add(name=name)(args)
        elif kind in ("relu", "sigmoid", "tanh", "softplus", "exp"):
            out = layers.Activation(kind, name=name)(args[0])
        elif kind == "max_pool":
            out = layers.MaxPooling1D(p["size"], name=name)(args[0])
        elif kind == "avg_pool":
            out = layers.AveragePooling1D(p["size"], name=name)(args[0])
        elif kind == "global_avg_pool":
            out = layers.GlobalAveragePooling1D(name=name)(args[0])
        elif kind == "flatten":
            out = layers.Flatten(name=name)(args[0])
        else:
            raise ValueError(f"layer kind {kind!r} has no Keras builder")
        values.append(out)
    outputs = [values[node] for node in spec.outputs.values()]
    return keras.Model(values[0], outputs if len(outputs) > 1 else outputs[0], name=spec.name)
