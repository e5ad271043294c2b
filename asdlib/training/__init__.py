"""The training layer: ``config`` (frozen run configurations and their YAML presets) -> ``losses`` (CE,
ArcFace, ArcMix, Noisy-ArcMix) -> ``checkpoints`` (saving and loading models) -> ``loop`` (the plain PyTorch
training loop); ``autoencoder`` fits the DCASE2020 baseline autoencoder, one per machine type. Imports only from :mod:`asdlib.data` and :mod:`asdlib.nn`.
"""
