"""Evaluation and recommendation with a trained run (see README.md in this folder).

`python -m animind_trainer.recommend.evaluate REQUEST.json` scores the model (beam search constrained
to valid semantic IDs) and the baselines on held-out users; `python -m
animind_trainer.recommend.recommend REQUEST.json` ranks anime for one watch history.
"""
