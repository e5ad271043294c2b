"""The evaluation layer: ``scoring`` (anomaly scores from classifier outputs) -> ``metrics`` (AUC, pAUC, the DCASE
tables) -> ``bootstrap`` (intervals of differences between runs: over test clips, and over seeds and clips) ->
``threshold`` (a decision threshold from normal clips); what a run's embeddings and history say: ``angles``
(compactness and separation per machine ID), ``kinds`` (AUC per anomaly kind), ``overfitting``; and the simple
models to beat: ``baseline`` (a per-ID Gaussian) and ``autoencoder`` (the DCASE2020 baseline's scores).
Imports only from :mod:`asdlib.data` and :mod:`asdlib.nn`, never from ``training``.
"""
