"""Camera-disentangled multi-view 3D pose (Remelli et al., CVPR 2020): DLT solvers so far."""
