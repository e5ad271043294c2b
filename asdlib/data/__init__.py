"""The data layer: everything before a tensor reaches a network.

``dcase`` (the DCASE2020 Task 2 vocabulary: machine types, IDs, file names, label orders) -> ``audio`` (reading
and checking wav files) -> ``index`` (a dataset folder as a table of clips) -> ``cache`` (the waveform cache
that training reads) ; ``download`` (the real data from Zenodo: ``zenodo`` plans, ``transfer`` streams,
``extract`` unpacks) and ``synth`` (the procedural dataset, with its machine models in ``machines`` and the
ID-independent faults of its ``fault_target`` option in ``faults``) are the two ways to get a dataset. Modules here import nothing from the layers above (``nn``, ``training``, ``evaluation``,
``experiment``, ``teaching``); ``tests/test_layers.py`` checks it.
"""
