"""Scoring methods: predictions, ISM (naive, and the methods registered in ``ism.METHODS``)."""
