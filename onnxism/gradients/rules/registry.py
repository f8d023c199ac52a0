"""The table of vector-Jacobian rules and the decorators that fill it.

A rule is ``vjp(ctx, node, gouts) -> {input index: cotangent name}``; ``gouts`` holds one cotangent name (or None)
per node output, each shaped (S, *output shape). ``@rule("Op", ...)`` registers such a function for each op type
named; ``@unary("Op", ...)`` registers the common case of one input on the sequence path (input 0, any others
constant parameters) from a function ``cotangent(ctx, node, g, x, y) -> name`` that is called only where output 0
has a cotangent ``g`` and input ``x`` takes one (``y`` is output 0).
"""

import functools

#: op type -> vjp(ctx, node, gouts)
RULES = {}


def rule(*op_types):
    """Register the decorated ``vjp(ctx, node, gouts)`` as the rule of each of ``op_types``; returns it unchanged.
    An op registered twice (two family modules claiming it) is an error at import, not a silent override."""
    def register(vjp):
        for op_type in op_types:
            if op_type in RULES:
                taken = RULES[op_type]
                raise ValueError(f"two gradient rules for {op_type}: {taken.__module__}.{taken.__name__} and "
                                 f"{vjp.__module__}.{vjp.__name__}; register each op in one family module")
            RULES[op_type] = vjp
        return vjp
    return register


def unary(*op_types):
    """Register the decorated ``cotangent(ctx, node, g, x, y)`` as the rule of each of ``op_types``, for the
    cotangent of input 0 alone; returns it unchanged."""
    def register(cotangent):
        @functools.wraps(cotangent)
        def vjp(ctx, node, gouts):
            g = gouts[0]
            if g is None or not ctx.needs(node.input[0]):
                return {}
            return {0: cotangent(ctx, node, g, node.input[0], node.output[0])}
        rule(*op_types)(vjp)
        return cotangent
    return register
