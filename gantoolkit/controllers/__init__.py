"""Controllable generation on trained generators: interpolation and latent arithmetic, classifier-gradient editing,
and named directions in z-space (saved as their own safetensors files)."""
