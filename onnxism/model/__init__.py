"""The loaded model: ``loading.load`` (read, repair, the LOAD pipeline) and the ``sequence_model.SequenceModel``
it makes; the sequence input, extra inputs and token ids it finds (``sequence_input.py``, ``extra_inputs.py``,
``tokens.py``), which the passes below it read. (Nothing is imported here, so that the passes can read those
modules without importing the loading above them.)"""
