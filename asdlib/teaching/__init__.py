"""The series' own layer, on top of everything: what the notebooks show and how they run.

``paths`` and ``notebook`` (where data and runs live, the setup cell), ``pretrained`` (the shipped reference
runs) and ``reproduce`` (verify, retrain and ship them), ``baselines`` (the DCASE2020 autoencoder baseline's
shipped scores), ``claims`` (the notebooks' sentences checked against their results), ``replication`` (our recipe beside
the authors', verdicts that respect the seed spread), ``plots``, ``widgets`` and ``comparator`` (figures, the clip
explorer and the embedding comparator), ``embeddings`` (angle and map views of a run), ``toy`` (the 2-D margin
toy), ``exercises`` (checkers and the worked solutions), ``series`` (runs the numbered notebooks),
``saved_widgets`` (static fallbacks for the progress bars of saved notebooks) and ``nbtools`` (housekeeping of the
committed notebooks).
"""
