"""Model architectures and loading (torchvision backbones, project checkpoints)."""
