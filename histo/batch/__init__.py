"""histo.batch.run."""
