"""Graph rewrites, one per module, run as named pipelines (``pipeline.py``): loading's, fast ISM's normalisation,
the gradient graph's preparation. Each pass is ``run(proto, ctx) -> PassResult``; ``base.run_pipeline`` runs a list
of them and names the pass that failed."""
