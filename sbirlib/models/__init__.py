"""Models: backbones (Sketch-a-Net, ResNet trunks, SE-ResNe(X)t) and one module per paper.

Use :func:`create_model` / :func:`list_models` rather than importing classes directly
when a name is enough.
"""

from sbirlib.models.registry import create_model, list_models, model_entrypoint, register_model

__all__ = ["create_model", "list_models", "model_entrypoint", "register_model"]
