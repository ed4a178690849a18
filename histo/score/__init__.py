"""histo.score."""
