"""histo.review.state."""
