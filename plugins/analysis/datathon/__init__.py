"""The datathon kit: freeze a project's labelled observations into a fair datathon (split by
contributor and by day, test labels kept by the organiser, a data card), score submissions and
keep a leaderboard.

    observatory datathon create NAME --project P --out DIR      (freeze: ``freeze``)
    observatory datathon score PREDICTIONS.csv --datathon DIR --name TEAM --model "..."
    observatory datathon leaderboard DIR
    observatory models evaluate MODEL --datathon DIR [--submit]  (species_id's model, same scores)

Modules: ``source`` (the rows), ``split``, ``freeze``, ``datacard``, ``predictions`` (the
submission format and its checks), ``score``, ``leaderboard``, ``layout`` (the folders).
"""

from __future__ import annotations
