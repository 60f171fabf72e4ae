"""hte: individualized treatment effects of BCMA CAR-T versus teclistamab in RRMM.

Data flows one way: data -> design -> estimators -> evaluation and explanation -> report and app.
"""

__version__ = "0.1.0"
