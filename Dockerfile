# The RunPod pod image: Python 3.11, the pinned CUDA sets requirements/train-cuda.txt (Axolotl 0.19.0,
# torch 2.13.0) and requirements/eval-cuda.txt (vLLM 0.32.0) in two environments, and this repo's
# `haha` package installed (not editable) in both. Built and pushed by .github/workflows/image.yml;
# pods run it pinned by digest ([compute] image in haha.toml). The pod gets its work as a base64 boot
# script in $HAHA_BOOT (RunPod's API builds GraphQL by string interpolation, so quotes in docker args
# would break it).
#
# Base: Debian bookworm's slim Python 3.11 (glibc 2.36, the platform the sets are resolved and checked
# for: make lock, make resolve-check). No CUDA base is needed: torch 2.13.0's Linux wheel is a CUDA 13.0
# build that brings its CUDA libraries as nvidia-* wheels; the host supplies only the driver (one that
# supports CUDA 13). The digest is the one a public repository's image ADR (dated 2026-08-24) records
# as verified against Docker Hub that day; it could not be looked up from here (no registry access).
# VERIFY before the first build, and re-pin to take base image security updates:
#   docker buildx imagetools inspect python:3.11-slim-bookworm
FROM python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91

# git: the boot script clones the repo. gcc + libc6-dev: Triton (Axolotl's LoRA kernels, Liger, vLLM)
# compiles its small CUDA launcher stubs with the system C compiler at run time. Versions come from
# the digest-pinned Debian release; exact apt pins would break every rebuild after a security update.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends git gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/haha/train/bin:$PATH \
    HAHA_EVAL_PYTHON=/opt/haha/eval/bin/python

# Only what the package build and the install script need; experiments (train/) come from the git
# checkout the boot script makes, so this image is rebuilt only when the pipeline or its pins change.
WORKDIR /opt/haha/src
COPY pyproject.toml README.md ./
COPY requirements/ requirements/
COPY tools/install-env.sh tools/uv-env.sh tools/
COPY schemas/ schemas/
COPY scripts/ scripts/

# Both environments with the script `make install` runs, from the CUDA sets only, in one layer. uv
# installs each file by hard link from its cache, so the 115 packages both sets pin at the same version
# (torch, the nvidia-* CUDA libraries, triton...) are one copy on disk and in the layer once the cache
# is gone. The source is removed after: haha is installed as a wheel (schemas and boot.sh are package
# data), and a pod runs its own checkout.
#
# The RUN below was tried outside Docker (no engine here) on Debian bookworm / Python 3.11: both envs
# installed in 206 s, 9.8 GB on disk, torch's files one inode in both; axolotl 0.19.0 and vllm 0.32.0
# (torch 2.13.0+cu130) import, and the eval env's haha reads its packaged schemas.
# Expected image size (estimated, not built): ~10.0 GiB unpacked, ~4.5 GiB to pull.
# `python tools/check_cuda_sets.py --unpacked` sums each pinned wheel's uncompressed file sizes from its
# zip directory (HTTP range requests): train 6.47 GiB + eval 7.87 GiB, of which 4.73 GiB is shared, so
# 9.61 GiB with the hard links (14.3 GiB without); plus ~0.35 GiB for the slim base, git and gcc. The
# wheels themselves are 4.29 GiB (the same script without --unpacked), about what the compressed
# layers weigh. torch alone is 1.0 GiB unpacked, vllm 0.8, triton 0.7, cuBLAS 0.6, cuDNN 0.5.
# DeepSpeed (train env; 2026-12-05) is an sdist built here into a pure-Python wheel (not counted above);
# its ops compile when first used, and the CPU-offload ones need g++ and CUDA headers, not in this image.
# The 206 s install try above predates DeepSpeed.
RUN XDG_CACHE_HOME=/tmp/haha-build-cache tools/install-env.sh /opt/haha/train train-cuda \
 && XDG_CACHE_HOME=/tmp/haha-build-cache tools/install-env.sh /opt/haha/eval eval-cuda \
 && haha --help > /dev/null \
 && "$HAHA_EVAL_PYTHON" -c "import haha.schemas as s; s.validator('results')" \
 && rm -rf /tmp/haha-build-cache /opt/haha/src

WORKDIR /workspace

CMD ["bash", "-c", "boot=\"$(mktemp)\" && echo \"$HAHA_BOOT\" | base64 -d > \"$boot\" && exec bash \"$boot\""]
