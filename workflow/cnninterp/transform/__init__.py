"""Interpretable transformations (Worrall et al., ICCV 2017): an encoder–decoder whose latent is
turned by the feature transform layer (``cnninterp.models.ftl``) so that it turns like the image."""
