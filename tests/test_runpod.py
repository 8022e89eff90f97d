"""RunPodCompute through the real runpod SDK against the loopback GraphQL fake."""

from __future__ import annotations

import logging
import re

import pytest
from fakes.runpod_graphql import NO_RESOURCES, NOT_ENOUGH_GPUS, OUT_OF_STOCK, Host, RunPodFake
from haha.compute.base import PodSpec
from haha.compute.runpod import RunPodCompute
from haha.errors import InputError, ServiceError
from haha.settings import Settings

pytest_plugins = ["fakes.fixtures"]

H100, H100_PCIE = "NVIDIA H100 80GB HBM3", "NVIDIA H100 PCIe"
SECRETS = {"HF_TOKEN": "hf_secret_value_123", "WANDB_API_KEY": "wandb_secret_456"}


def make_settings(key: str | None = "rp-test-key") -> Settings:
    gpus = [{"id": H100, "price_per_hour": 2.99, "peak_bf16_tflops": 989, "memory_gb": 80}]
    return Settings.model_validate({"runpod_api_key": key, "compute": {"gpu_types": gpus}})


def make_spec(**overrides: object) -> PodSpec:
    fields: dict = {
        "name": "haha-haha-llama-3-8b-lora-001-1a2b3c4-20261128T0300Z",
        "image": "axolotlai/axolotl-cloud@sha256:0123abcd",
        "gpu_types": (H100, H100_PCIE),
        "gpu_count": 2,
        "cloud_type": "SECURE",
        "container_disk_gb": 80,
        "volume_gb": 20,
        # Quotes, backslashes and newlines: the SDK pastes values into GraphQL text unescaped.
        "env": {"HAHA_BASENAME": "haha-llama-3-8b-lora-001", "HAHA_NOTE": 'say "hi"\\n\nnext line'},
        "secrets": dict(SECRETS),
    }
    return PodSpec(**(fields | overrides))


def test_launch_sends_image_gpu_disks_and_env(runpod_api: RunPodFake) -> None:
    spec = make_spec()
    pod = RunPodCompute(make_settings()).launch(spec)

    (deploy,) = runpod_api.calls("podFindAndDeployOnDemand")
    assert deploy["name"] == spec.name
    assert deploy["imageName"] == spec.image
    assert deploy["gpuTypeId"] == H100
    assert deploy["gpuCount"] == 2
    assert deploy["cloudType"] == "SECURE"
    assert deploy["containerDiskInGb"] == 80
    assert deploy["volumeInGb"] == 20
    assert "networkVolumeId" not in deploy
    assert {e["key"]: e["value"] for e in deploy["env"]} == {**spec.env, **SECRETS}
    assert pod.id in runpod_api.pods
    assert (pod.name, pod.gpu_type, pod.cost_per_hour) == (spec.name, H100, 2 * 2.99)  # both GPUs


def test_launch_attaches_network_volume_in_its_data_center(runpod_api: RunPodFake) -> None:
    runpod_api.network_volumes.append(
        {"id": "vol-1", "name": "hf-cache", "size": 200, "dataCenterId": "EU-RO-1"}
    )
    RunPodCompute(make_settings()).launch(make_spec(network_volume_id="vol-1"))

    (deploy,) = runpod_api.calls("podFindAndDeployOnDemand")
    assert deploy["networkVolumeId"] == "vol-1"
    assert deploy["dataCenterId"] == "EU-RO-1"


def test_out_of_stock_falls_back_to_next_gpu_type(runpod_api: RunPodFake) -> None:
    runpod_api.out_of_stock = {H100}
    pod = RunPodCompute(make_settings()).launch(make_spec())

    assert [d["gpuTypeId"] for d in runpod_api.calls("podFindAndDeployOnDemand")] == [H100, H100_PCIE]
    assert pod.gpu_type == H100_PCIE
    assert pod.cost_per_hour is None  # not priced in settings


def test_all_out_of_stock_is_a_clear_error(runpod_api: RunPodFake) -> None:
    runpod_api.out_of_stock = {H100, H100_PCIE}
    with pytest.raises(ServiceError, match="no capacity") as info:
        RunPodCompute(make_settings()).launch(make_spec())

    assert f"{H100}: {OUT_OF_STOCK}" in str(info.value) and f"{H100_PCIE}: {OUT_OF_STOCK}" in str(info.value)
    assert runpod_api.pods == {}


@pytest.mark.parametrize("refusal", [NOT_ENOUGH_GPUS, NO_RESOURCES])
def test_every_capacity_refusal_moves_on_to_the_next_gpu_type(runpod_api: RunPodFake, refusal: str) -> None:
    runpod_api.deploy_errors = {H100: refusal}
    pod = RunPodCompute(make_settings()).launch(make_spec())

    assert [d["gpuTypeId"] for d in runpod_api.calls("podFindAndDeployOnDemand")] == [H100, H100_PCIE]
    assert pod.gpu_type == H100_PCIE


def test_the_final_error_says_what_runpod_answered_for_each_type(runpod_api: RunPodFake) -> None:
    runpod_api.deploy_errors = {H100: NOT_ENOUGH_GPUS}
    runpod_api.out_of_stock = {H100_PCIE}
    with pytest.raises(ServiceError) as info:
        RunPodCompute(make_settings()).launch(make_spec())

    assert f"{H100}: {NOT_ENOUGH_GPUS}" in str(info.value)
    assert f"{H100_PCIE}: {OUT_OF_STOCK}" in str(info.value)


def test_min_cuda_version_admits_every_newer_driver(runpod_api: RunPodFake) -> None:
    runpod_api.hosts = [Host(H100, "12.8"), Host(H100, "13.2")]
    RunPodCompute(make_settings()).launch(make_spec(min_cuda_version="13.0", gpu_types=(H100,)))

    (deploy,) = runpod_api.calls("podFindAndDeployOnDemand")
    assert deploy["minCudaVersion"] == "13.0" and "allowedCudaVersions" not in deploy
    (pod,) = runpod_api.pods.values()
    assert pod["host"].cuda == "13.2"


def test_fake_matches_allowed_cuda_versions_exactly(runpod_api: RunPodFake) -> None:
    """RunPod's documented semantics: a listed version no host reports leaves nothing to pick."""
    import runpod

    runpod_api.hosts = [Host(H100, "12.8"), Host(H100, "13.1")]
    runpod.api_key = "rp-test-key"
    with pytest.raises(runpod.error.QueryError, match="no longer any instances"):
        runpod.create_pod("p", "img", H100, allowed_cuda_versions=["13.0"])
    assert runpod.create_pod("p", "img", H100, allowed_cuda_versions=["13.1"])["id"]


def test_fake_refuses_fields_and_inputs_runpods_schema_lacks(runpod_api: RunPodFake) -> None:
    import runpod
    from runpod.api.graphql import run_graphql_query
    from runpod.error import QueryError

    runpod.api_key = "rp-test-key"
    with pytest.raises(QueryError, match='Cannot query field "secrets" on type "Pod"'):
        run_graphql_query("query { myself { pods { id secrets } } }")
    with pytest.raises(QueryError, match='Field "gpuTypeIds" is not defined by type'):
        run_graphql_query('mutation { podFindAndDeployOnDemand(input: {gpuTypeIds: ["x"]}) { id } }')
    with pytest.raises(QueryError, match=re.escape('Unknown argument "filter" on field "Query.pod".')):
        run_graphql_query('query { pod(filter: {podId: "x"}) { id } }')
    with pytest.raises(QueryError, match="must have a selection of subfields"):
        run_graphql_query("query { myself { pods { machine } } }")
    assert runpod_api.pods == {}


def test_private_image_without_registry_auth_bills_and_never_runs(runpod_api: RunPodFake) -> None:
    image = "ghcr.io/synagi/haha-pod@sha256:" + "ab" * 32
    pod = RunPodCompute(make_settings()).launch(make_spec(image=image))

    assert pod.id in runpod_api.pods and runpod_api.pulling == {pod.id}  # created, billed, not running
    assert RunPodCompute(make_settings()).list_pods()[0].status == "RUNNING"


def test_registry_auth_id_is_sent_and_the_private_image_pulls(runpod_api: RunPodFake) -> None:
    runpod_api.registry_auths = {"cr-ghcr-1": "ghcr.io"}
    image = "ghcr.io/synagi/haha-pod@sha256:" + "ab" * 32
    pod = RunPodCompute(make_settings()).launch(make_spec(image=image, registry_auth_id="cr-ghcr-1"))

    (deploy,) = runpod_api.calls("podFindAndDeployOnDemand")
    assert deploy["containerRegistryAuthId"] == "cr-ghcr-1"
    assert pod.id in runpod_api.pods and runpod_api.pulling == set()


def test_other_errors_stop_the_fallback(runpod_api: RunPodFake) -> None:
    runpod_api.deploy_errors = {H100: "Your account balance is too low"}
    with pytest.raises(ServiceError, match="balance is too low"):
        RunPodCompute(make_settings()).launch(make_spec())

    assert len(runpod_api.calls("podFindAndDeployOnDemand")) == 1


def test_unknown_gpu_type_is_an_error(runpod_api: RunPodFake) -> None:
    with pytest.raises(ServiceError, match="No GPU found"):
        RunPodCompute(make_settings()).launch(make_spec(gpu_types=("NVIDIA B300",)))


def test_secrets_stay_out_of_errors_and_logs(
    runpod_api: RunPodFake, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # A server that echoes the input back in its error must not leak it through us.
    runpod_api.deploy_errors = {H100: f"invalid env value {SECRETS['HF_TOKEN']} / {SECRETS['WANDB_API_KEY']}"}
    spec = make_spec()
    with pytest.raises(ServiceError) as info:
        RunPodCompute(make_settings()).launch(spec)

    texts = [str(info.value), repr(info.value), repr(spec), caplog.text]
    for secret in [*SECRETS.values(), "rp-test-key"]:
        assert all(secret not in text for text in texts)
    assert "***" in str(info.value)


def test_list_pods_reports_ours(runpod_api: RunPodFake) -> None:
    compute = RunPodCompute(make_settings())
    launched = compute.launch(make_spec())

    (pod,) = compute.list_pods()
    assert (pod.id, pod.name, pod.status, pod.gpu_type) == (launched.id, launched.name, "RUNNING", "H100 SXM")
    assert pod.cost_per_hour == 2 * 2.99  # RunPod's costPerHr: the whole pod, both GPUs


def test_terminate_is_idempotent(runpod_api: RunPodFake) -> None:
    compute = RunPodCompute(make_settings())
    pod = compute.launch(make_spec())

    compute.terminate(pod.id)
    assert compute.list_pods() == []
    compute.terminate(pod.id)  # already gone: no error
    assert [c["podId"] for c in runpod_api.calls("podTerminate")] == [pod.id, pod.id]


def test_missing_api_key_says_which_secret(runpod_api: RunPodFake) -> None:
    with pytest.raises(InputError, match="RUNPOD_API_KEY"):
        RunPodCompute(make_settings(key=None)).list_pods()
    assert runpod_api.requests == []


def test_rejected_api_key_is_a_service_error(runpod_api: RunPodFake) -> None:
    with pytest.raises(ServiceError, match="check your API key") as info:
        RunPodCompute(make_settings(key="rp-wrong-key")).launch(make_spec())
    assert "rp-wrong-key" not in str(info.value)
    assert runpod_api.requests[0].header("authorization") == "Bearer rp-wrong-key"


def test_deploy_input_is_what_the_sdk_builds_plus_the_fields_it_lacks() -> None:
    """Our own mutation must not drift from runpod 1.12's create_pod, except by what it cannot send."""
    from fakes.graphql import parse
    from haha.compute.runpod import VOLUME_MOUNT_PATH, deploy_input, deploy_mutation
    from runpod.api.mutations.pods import generate_pod_deployment_mutation

    env = {"HAHA_BASENAME": "b-001"}
    spec = make_spec(env=env, secrets={}, min_cuda_version="13.0", registry_auth_id="cr-1")
    sdk = generate_pod_deployment_mutation(  # the arguments create_pod passes for our old call
        name=spec.name,
        image_name=spec.image,
        gpu_type_id=H100,
        cloud_type="SECURE",
        gpu_count=2,
        volume_in_gb=20,
        container_disk_in_gb=80,
        min_vcpu_count=1,
        min_memory_in_gb=1,
        docker_args="",
        volume_mount_path=VOLUME_MOUNT_PATH,
        env=env,
    )
    ours = parse(deploy_mutation(deploy_input(spec, H100))).fields[0].args["input"]

    assert ours.pop("minCudaVersion") == "13.0" and ours.pop("containerRegistryAuthId") == "cr-1"
    assert ours == parse(sdk).fields[0].args["input"]
