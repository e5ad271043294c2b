"""asdlib: the helper package of the asd-notebooks series (anomalous sound detection, DCASE2020 Task 2).

Modules follow the data flow: ``dcase`` (vocabulary) -> ``data`` / ``cache`` / ``synth`` / ``download`` ->
``features`` -> ``models`` -> ``losses`` -> ``train`` -> ``scoring`` / ``metrics`` -> ``plots`` / ``widgets``,
and ``cli`` for ``python -m asdlib``. Importing has no side effects.
"""
__version__ = "0.1.0"
