"""Content review: what a person must check before publishing a generated article.

Pure functions on text, one module per kind of check: quotes (and who they are attributed to),
numbers, dates, names (people and organisations), claims (sentences stating a fact about a named
party), copied spans (12-word runs shared with the training or bundled corpus) and terms (a user's
do-not-publish list). `review_text` runs them all; `make_reviewer` loads the corpus and term list once.
This package sits beside `evaluation`: it imports no command, TUI or server code.
"""

from morris_mlx.review.flag import KINDS, Flag
from morris_mlx.review.reviewer import Reviewer, make_reviewer, review_text

__all__ = ["KINDS", "Flag", "Reviewer", "make_reviewer", "review_text"]
