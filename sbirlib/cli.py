"""The ``sbir`` command (placeholder; the training-core issue fills it)."""


def main(argv=None) -> int:  # pragma: no cover - replaced by the training-core work
    raise SystemExit("sbir: not implemented yet")
