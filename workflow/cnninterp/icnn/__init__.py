"""Interpretable CNNs (Zhang, Wu, Zhu, CVPR 2018): part templates, the filter loss, and its evaluation."""
