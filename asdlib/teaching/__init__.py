"""The series' own layer, on top of everything: what the notebooks show and how they run.

``paths`` and ``notebook`` (where data and runs live, the setup cell), ``pretrained`` (the shipped reference
runs), ``plots`` and ``widgets`` (figures and interactive explorers), ``embeddings`` (angle and map views of
a run), ``toy`` (the 2-D margin toy), ``exercises`` (checkers and the worked solutions), ``series`` (runs the
numbered notebooks) and ``nbtools`` (housekeeping of the committed notebooks).
"""
