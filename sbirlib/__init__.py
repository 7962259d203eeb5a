"""sbirlib: a small PyTorch library for sketch-based image retrieval (SBIR).

The library behind the book *Sketch-Based Image Retrieval, Reproduced*. It holds the
models and losses of each paper (`sbirlib.models`, `sbirlib.losses`), the data layer
(`sbirlib.data`), the one evaluator every chapter uses (`sbirlib.evaluation`), the
shared trainer (`sbirlib.training`) and the per-method recipes (`sbirlib.recipes`).
"""

__version__ = "0.1.0"
