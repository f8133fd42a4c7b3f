"""Placeholder: being written (see issue 2)."""
class Dataset:  # replaced by the reader work
    pass
