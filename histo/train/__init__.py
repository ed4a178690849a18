"""histo.train.loop."""
