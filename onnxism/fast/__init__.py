"""Fast ISM: the window analysis of the ONNX graph, the ISM graph built from it, and its executor.

  rules/       per op: how output positions along the length depend on input positions
  analysis.py  which tensors carry a window of changed positions, how wide, where, per mutated position
               (what it finds, as data: windows.py)
  heads.py     linear global layers after a windowed tensor, updated incrementally
  build/       the reference graph (tables of cached tensors) and the ISM graph (per-window lowerings)
  plan.py      build_plan: the FAST_NORMALISE pipeline, the analysis, the graphs; FastPlan
  indices.py   the gather indices the ISM graph takes, computed per batch of substitutions
  runner.py    IO-bound runs of the two graphs
  executor.py  FastISM, the scorer of ``onnxism.ism(method="fast")``, on a compiled plan
  standalone.py  the two graphs and the index arithmetic as one ONNX model (``onnxism compile``)
"""
