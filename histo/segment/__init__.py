"""histo.segment.segmenter."""
