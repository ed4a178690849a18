"""histo.measure."""
