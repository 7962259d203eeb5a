"""Losses, one concept per submodule; import the submodule you need::

    from sbirlib.losses import triplet, distances, classification
    loss = triplet.triplet_margin_loss(e_sketch, e_pos, e_neg, margin=0.3)

* :mod:`sbirlib.losses.distances` -- pairwise / paired distances (Euclidean, squared, cosine);
* :mod:`sbirlib.losses.triplet` -- fixed triplets, in-batch all-negatives (DLI-Net), batch-hard,
  cross-domain batch-hard;
* :mod:`sbirlib.losses.classification` -- cross-entropy classifier heads;
* :mod:`sbirlib.losses.miners` -- index tuples (hardest positive / negative) for inspection;
* paper-specific losses live in their own files (``holef``, ``cscan``, ...).

Nothing is re-exported here, so ``sbirlib.losses.triplet.triplet_margin_loss`` has one name.
"""
