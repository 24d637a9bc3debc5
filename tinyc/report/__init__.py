"""Reports: one Report object (report.py); text, JSON and plots are views of it."""
