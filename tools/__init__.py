"""Build tooling for the book (not part of the sbirlib package)."""
