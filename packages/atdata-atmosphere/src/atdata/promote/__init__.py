"""atdata.promote: publish a local dataset to ATProto."""

__all__: list[str] = []
