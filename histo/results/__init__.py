"""histo.results."""
