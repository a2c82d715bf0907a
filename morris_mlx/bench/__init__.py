"""`morris bench`: measured speed and memory, one JSON object per measurement.

Each measurement runs a warm-up that is thrown away, then `repeats` timed runs reported as min and
median, with the machine, library versions and settings beside the figures.
"""
