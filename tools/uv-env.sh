# shellcheck shell=bash
# Sourced by tools/lock.sh and tools/install-env.sh: the uv they run and where the CPU torch comes from.
#
# uv, not pip-tools, makes and installs the pinned sets: it resolves for another platform and Python
# from the registry's metadata (`--python-platform x86_64-manylinux_2_28 --python-version 3.11`, seconds,
# no wheels downloaded), so the CUDA sets are locked and checked on a CPU machine; it has overrides for
# conflicts that are on paper only (requirements/overrides.txt), which pip's resolver cannot express;
# `--exclude-newer` makes a regeneration reproducible; and it installs a multi-GB set with parallel
# downloads and hard links from its cache (the pod image shares one torch between its two envs that way).
# uv is a build tool here, in no environment: it lives in a venv of its own under the user's cache.

HAHA_UV_VERSION=0.13.9

# Print the path of uv $HAHA_UV_VERSION, installing it with pip on first use ($HAHA_UV overrides).
uv_bin() {
  if [ -n "${HAHA_UV:-}" ]; then
    printf '%s\n' "$HAHA_UV"
    return
  fi
  local dir="${XDG_CACHE_HOME:-$HOME/.cache}/haha/uv-$HAHA_UV_VERSION"
  if [ ! -x "$dir/bin/uv" ]; then
    "${PYTHON:-python3}" -m venv "$dir" >&2
    "$dir/bin/python" -m pip install --quiet "uv==$HAHA_UV_VERSION" >&2
  fi
  printf '%s\n' "$dir/bin/uv"
}

# uv reads none of pip's configuration. PyTorch's CPU build of torch (requirements/cpu.txt) is not on
# PyPI: the machine says where it lies through pip's find-links (PIP_FIND_LINKS, or pip's config file:
# /opt/wheels on our machines; https://download.pytorch.org/whl/torch/ in GitHub Actions). Prints one
# `--find-links=LOCATION` argument per location, for the CPU sets only: the CUDA sets come from PyPI alone.
cpu_torch_sources() {
  local links="${PIP_FIND_LINKS:-}"
  if [ -z "$links" ]; then
    links="$("${PYTHON:-python3}" -m pip config get global.find-links 2>/dev/null || true)"
  fi
  local link
  for link in $links; do
    printf -- '--find-links=%s\n' "$link"
  done
}
