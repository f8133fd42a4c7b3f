"""Placeholder: being written (see issue 2)."""
class SampleBatch:  # replaced by the reader work
    pass
