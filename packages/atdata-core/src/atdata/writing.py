"""Placeholder: being written (see issue 4)."""
def write_samples(*args, **kwargs):
    raise NotImplementedError
