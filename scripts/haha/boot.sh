#!/usr/bin/env bash
# Pod boot: check out the repo at the launched commit and run `haha pod`. Shipped base64-encoded in
# HAHA_BOOT; the image's start command is
#   bash -c 'boot="$(mktemp)" && echo "$HAHA_BOOT" | base64 -d > "$boot" && exec bash "$boot"'
# First teardown layer: whatever happens here, the EXIT trap terminates the pod (marking the run
# failed with this log when `haha pod` did not get to finish it).
set -uo pipefail
# When this container started: the run records the seconds from here to its first training step, and
# from launch's request to here (meta.phases.boot). Microseconds from bash 5's EPOCHREALTIME (a comma
# where the locale says so), whole seconds from date elsewhere.
now="${EPOCHREALTIME:-}"
export HAHA_BOOT_EPOCH="${HAHA_BOOT_EPOCH:-${now/,/.}}"
export HAHA_BOOT_EPOCH="${HAHA_BOOT_EPOCH:-$(date +%s)}"

PY="${HAHA_PYTHON:-python}"
DIR="${HAHA_CHECKOUT:-/workspace/haha}"
LOG="${HAHA_BOOT_LOG:-/tmp/haha-boot.log}"
mkdir -p "$(dirname "$LOG")" && exec > >(tee -a "$LOG") 2>&1

teardown() {
  rc=$?
  trap - EXIT TERM INT
  echo "boot: exiting with status $rc; terminating the pod"
  "$PY" -m haha.cli pod-terminate --basename "${HAHA_BASENAME:-}" --log "$LOG" --rc "$rc" && exit "$rc"
  # The API refused or was unreachable: RunPod's own CLI (in every pod, with a pod-scoped key) next.
  if [ -n "${RUNPOD_POD_ID:-}" ] && command -v runpodctl >/dev/null; then
    runpodctl remove pod "$RUNPOD_POD_ID" && exit "$rc"
  fi
  # Still up: RunPod restarts this container; `haha pod` then finds the run's end recorded and only
  # tries to terminate again (it never trains twice), and the reaper ends it at the deadline.
  echo "boot: could not terminate the pod"
  exit "$rc"
}
trap teardown EXIT
trap 'exit 143' TERM INT

echo "boot: ${HAHA_BASENAME:?} at ${HAHA_REF:?} from ${HAHA_REPO_URL:?}"
if [ -n "${GITHUB_TOKEN:-}" ]; then  # private repos; passed as git config env, never on a command line
  server="$(printf '%s' "$HAHA_REPO_URL" | sed -E 's#^(https://[^/]+/).*#\1#')"
  export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0="http.${server}.extraheader"
  GIT_CONFIG_VALUE_0="AUTHORIZATION: basic $(printf 'x-access-token:%s' "$GITHUB_TOKEN" | base64 -w0)"
  export GIT_CONFIG_VALUE_0
fi
rm -rf "$DIR" && mkdir -p "$DIR" && cd "$DIR" || exit 10
git init -q . && git remote add origin "$HAHA_REPO_URL" || exit 11
git fetch -q --depth 1 origin "$HAHA_REF" && git checkout -q FETCH_HEAD || exit 12

# The image holds the dependencies; the checkout's own copy of the haha package runs when it has one.
if [ -d scripts/haha ]; then
  export PYTHONPATH="$DIR/scripts${PYTHONPATH:+:$PYTHONPATH}"
fi
"$PY" -m haha.cli pod "$HAHA_BASENAME" --repo "$DIR"
