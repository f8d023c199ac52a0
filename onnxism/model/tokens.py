"""Token inputs: which integer id each base has, for a model whose sequence input takes bases as ids (N, L).

There is no default: the ids are the model's own convention, and a guessed one would give wrong scores silently.
"""

from dataclasses import dataclass

from ..errors import InputError
from .sequence_input import graph_inputs

BASES = "ACGT"
TOKENS_HELP = ("for a model that takes bases as integer ids (N, L): the id of each base, by position ('ACGTN': A=0, "
               "C=1, G=2, T=3, N=4; any other character skips an id, '_ACGT': A=1 ... T=4) or by name "
               "('A=7,C=8,G=9,T=10,N=11'); without an id for N, sequences with N are refused")


@dataclass(frozen=True)
class Tokens:
    """Which id each base has in a token model's input; ``n`` is None where the model has no id for N."""

    ids: tuple  # ids of A, C, G, T
    n: object = None

    def describe(self):
        named = [f"{base}={token}" for base, token in zip(BASES, self.ids)]
        return ", ".join(named + ([f"N={self.n}"] if self.n is not None else []))

    @property
    def all_ids(self):
        return self.ids + ((self.n,) if self.n is not None else ())


def parse_tokens(spec):
    """``spec`` -> Tokens. A string gives ids by position ("ACGTN": A=0, ..., N=4; any other character skips an id:
    "_ACGT" is A=1 ... T=4), or "A=7,C=8,G=9,T=10,N=11"; a dict maps bases to ids. A, C, G and T are required,
    N is optional, ids are distinct and non-negative."""
    if isinstance(spec, Tokens):
        return spec
    if isinstance(spec, dict):
        mapping = {str(base).upper(): token for base, token in spec.items()}
    elif isinstance(spec, str) and "=" in spec:
        mapping = {}
        for part in spec.split(","):
            base, _, token = part.partition("=")
            mapping[base.strip().upper()] = token.strip()
    elif isinstance(spec, str):
        mapping = {}
        for token, base in enumerate(spec.upper()):
            if base in BASES + "N":
                if base in mapping:
                    raise InputError(f"tokens {spec!r} names {base} twice")
                mapping[base] = token
    else:
        raise InputError(f"tokens must be a string such as 'ACGTN' or a dict of base -> id, not {type(spec).__name__}")
    unknown = sorted(set(mapping) - set(BASES + "N"))
    if unknown:
        raise InputError(f"tokens {spec!r} names {unknown[0]!r}; only A, C, G, T and N have ids")
    missing = [base for base in BASES if base not in mapping]
    if missing:
        raise InputError(f"tokens {spec!r} give no id for {', '.join(missing)}; A, C, G and T need one each")
    ids = {}
    for base, token in mapping.items():
        try:
            value = int(token)
        except (TypeError, ValueError):
            raise InputError(f"tokens {spec!r}: the id of {base} is {token!r}, not an integer") from None
        if value < 0 or float(token) != value:
            raise InputError(f"tokens {spec!r}: the id of {base} is {token!r}; ids are non-negative integers")
        ids[base] = value
    if len(set(ids.values())) != len(ids):
        raise InputError(f"tokens {spec!r} give two bases the same id")
    return Tokens(tuple(ids[base] for base in BASES), ids.get("N"))


def token_inputs(graph):
    """The real inputs of rank 2 (N, L): candidates for a token input."""
    return [value for value in graph_inputs(graph)
            if value.type.tensor_type.HasField("shape") and len(value.type.tensor_type.shape.dim) == 2]
