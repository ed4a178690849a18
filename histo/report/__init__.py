"""histo.report.html."""
