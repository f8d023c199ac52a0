"""Small helpers the rule families share: reading a node's optional and constant inputs, axes, and the factors of
point-wise derivatives."""


def positive_axis(axis, rank):
    """``axis`` (possibly negative) as an index in 0 .. rank - 1."""
    return int(axis) % rank


def optional_input(node, index):
    """The name of input ``index`` of ``node``, or None where it is missing or empty."""
    return node.input[index] if len(node.input) > index and node.input[index] else None


def constant_list(ctx, node, index, what):
    """The constant value of input ``index`` as a flat list, None where the input is missing; refused, as ``what``,
    where it is not a constant."""
    name = optional_input(node, index)
    if name is None:
        return None
    value = ctx.value(name)
    if value is None:
        ctx.refuse(node, f"its {what} are not a constant")
    return value.reshape(-1).tolist()


def times(ctx, g, factor):
    """g * factor."""
    return ctx.op("Mul", [g, factor])


def where_positive(ctx, x, inside, outside):
    """Where(x > 0, inside, outside) for derivative factors."""
    return ctx.op("Where", [ctx.op("Greater", [x, ctx.scalar(0.0)]), inside, outside])
