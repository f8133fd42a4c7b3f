"""atdata.local: Repo, CLI and embedded servers (being written, issue 5)."""
