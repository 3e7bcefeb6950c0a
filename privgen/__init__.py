"""privgen: release a labelled artificial image dataset in place of a private one, and measure the leak.

The method is Triastcyn & Faltings, "Generating Artificial Data for Private Deep Learning"
(arXiv 1803.03148): a conditional WGAN-GP with a differentially private critic layer, students
trained on its samples, and an empirical bound on the expected privacy loss.
"""

__version__ = "0.1.0"
