"""atdata.promote: publish a local dataset (schema, then entry record) to an ATProto PDS.

::

    from atdata.promote import promote_to_atmosphere

    at_uri = promote_to_atmosphere(entry, local_index, client, description="...", tags=["images"],
                                   license="MIT", data_store=None)  # None: keep the S3 URLs; "blobs": upload

Atomic (a failure leaves no entry record), repeatable (the same entry again returns the
same AT-URI), and recorded in the local entry's metadata under ``"atmosphere"``.
"""

from ._promote import PROMOTIONS_KEY, promote_to_atmosphere

__all__ = ["PROMOTIONS_KEY", "promote_to_atmosphere"]
