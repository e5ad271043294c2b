"""The network layer, in the order of the papers' diagrams.

``frontends`` (Sgram: the log-mel spectrogram; Tgram: the learned 1-D convolutional front end of STgram-MFN,
Liu et al., ICASSP 2022) -> ``attention`` (SASgram's spectral and TAgram's temporal attention, Choi & Choi,
ICASSP 2024) -> ``mobilefacenet`` (the shared classifier body) -> ``heads`` (the linear and ArcFace heads) ->
``models`` (the assembled STgram-MFN, STSASgram-MFN and TASTgram-MFN); beside them ``autoencoder``, the dense
autoencoder of the DCASE2020 Task 2 baseline (Koizumi et al., DCASE 2020 Workshop) and its 5-frame log-mel input.
Imports only from :mod:`asdlib.data`.
"""
