"""histo.io.image."""
