# Sourced by tools/test and tools/quickstart (not run on its own): puts the uv command in
# the array UV, installing uv with pip on a fresh machine, and installs the workspace
# (all four packages editable plus the test tools) exactly as uv.lock pins it.
if command -v uv >/dev/null 2>&1; then
    UV=(uv)
else
    python3 -m pip install --quiet --disable-pip-version-check "uv>=0.5"
    UV=(python3 -m uv)  # works even before a pyenv/PATH rehash picks up the new binary
fi
# --compile-bytecode: every process that imports torch (spawned DataLoader workers, torchrun
# ranks) then loads it in ~4 s of CPU instead of ~8, even where PYTHONDONTWRITEBYTECODE is set.
"${UV[@]}" sync --frozen --quiet --compile-bytecode
