"""The evaluation layer: ``scoring`` (anomaly scores from classifier outputs) -> ``metrics`` (AUC, pAUC, the DCASE
tables, bootstrap intervals) -> ``threshold`` (a decision threshold from normal clips) ; ``baseline`` (simple
density models to beat). Imports only from :mod:`asdlib.data` and :mod:`asdlib.nn`, never from ``training``.
"""
