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

# PyTorch's CPU build of torch (requirements/cpu.txt) is not on PyPI. By default it comes from PyTorch's
# own page of torch files for its CPU index: a flat list of links holding torch and nothing else, so
# `--find-links` takes exactly the pinned torch==…+cpu from it and every other package from PyPI.
# (Not `--index https://download.pytorch.org/whl/cpu`: that index mirrors numpy, jinja2, triton…, and
# uv's default `first-index` strategy would then take those from it too, where our pins may be absent;
# nor `--torch-backend=cpu`, which routes triton, xformers and torchao there as well. uv's docs:
# concepts/indexes.md "Searching across multiple indexes", guides/integration/pytorch.md.)
HAHA_TORCH_CPU_LINKS=https://download.pytorch.org/whl/cpu/torch/

# uv reads none of pip's configuration: a machine that keeps torch elsewhere says so through pip's
# find-links (PIP_FIND_LINKS, or pip's config file: /opt/wheels on our machines), which wins over the
# default above. Prints one `--find-links=LOCATION` argument per location, for the CPU sets only: the
# CUDA sets come from PyPI alone.
cpu_torch_sources() {
  local links="${PIP_FIND_LINKS:-}"
  if [ -z "$links" ]; then
    links="$("${PYTHON:-python3}" -m pip config get global.find-links 2>/dev/null || true)"
  fi
  local link
  for link in ${links:-$HAHA_TORCH_CPU_LINKS}; do
    printf -- '--find-links=%s\n' "$link"
  done
}
