"""Fast ISM: window analysis of the ONNX graph, the ISM graph built from it, and its executor.

Pipeline (each step one module):
  probe.py     shapes of every tensor, from one onnxruntime run
  rules.py     per op: how output positions along the length depend on input positions
  analysis.py  which tensors carry a window of changed positions, how wide, where, per mutated position
  graphs.py    the reference graph (tables of cached tensors) and the ISM graph (per-window subgraphs)
  indices.py   the gather indices the ISM graph takes, computed per batch of substitutions
  method.py    FastISM, the executor plugged into ``onnxism.ism(method="fast")``
"""
