"""Generative models in plain torch (no Dagster, no arXiv knowledge): cGAN, CVAE, LSTM LM, training, metrics."""
