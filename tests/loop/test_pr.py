"""pr.yml under act: the PR gate and its sticky comment, as GitHub would run them on a PR."""

from __future__ import annotations

from pathlib import Path

from loop.configs import experiment_files
from loop.harness import Loop

NEW = "haha-tiny-001"
STICKY = "<!-- Sticky Pull Request Comment"


def test_good_config_passes_and_one_comment_is_edited_in_place(make_loop) -> None:
    lp: Loop = make_loop()
    lp.push_branch("exp/tiny", experiment_files(NEW), f"Add {NEW}")
    pr = lp.github.open_pull("exp/tiny", f"Try {NEW}")["number"]
    lp.checkout("exp/tiny")

    first = lp.act("pull_request", "pr.yml", lp.pull_request_event(pr))
    assert first.rc == 0, first.output[-4000:]
    (comment,) = lp.github.comments_on(pr)
    assert STICKY in comment["body"] and "<!-- haha-check -->" in comment["body"]
    assert NEW in comment["body"]
    assert "$" in comment["body"], "the comment gives the predicted cost"
    assert comment["user"]["login"] == "github-actions[bot]"
    # Only the comment job used the workflow token, within what pr.yml grants it.
    uses = [u for u in lp.github.token_uses if u["token_kind"] == "workflow"]
    assert uses and {u["job"] for u in uses} == {"comment"} and all(u["allowed"] for u in uses)

    # A second push changes the prediction: the same comment is edited, none is added.
    files = experiment_files(NEW, num_epochs=12)
    lp.push_branch("exp/tiny", {k: v for k, v in files.items() if k.endswith(".yml")}, "More epochs")
    lp.checkout("exp/tiny")
    second = lp.act("pull_request", "pr.yml", lp.pull_request_event(pr))
    assert second.rc == 0, second.output[-4000:]
    (edited,) = lp.github.comments_on(pr)
    assert edited["id"] == comment["id"]
    assert edited["updated_count"] == 1
    assert edited["body"] != comment["body"]
    mutations = [c for c in lp.github.graphql_calls() if c.get("kind") == "mutation"]
    assert [c["fields"] for c in mutations] == [["updateIssueComment"]]
    assert len(lp.github.api("POST", "issues")) == 1  # the one create, on the first run


def test_a_job_gets_only_the_permissions_its_workflow_grants(make_loop) -> None:
    """Issue 16: each job's GITHUB_TOKEN carries that job's `permissions:`; outside them GitHub's 403."""

    def comment_job_reads_only(root: Path) -> None:
        pr_yml = root / ".github" / "workflows" / "pr.yml"
        text = pr_yml.read_text()
        grant = "    permissions:\n      pull-requests: write # create / edit the sticky comment\n"
        assert grant in text
        pr_yml.write_text(text.replace(grant, "    permissions:\n      contents: read\n"))

    lp: Loop = make_loop(prepare=comment_job_reads_only)
    lp.push_branch("exp/tiny", experiment_files(NEW), f"Add {NEW}")
    pr = lp.github.open_pull("exp/tiny", f"Try {NEW}")["number"]
    lp.checkout("exp/tiny")

    run = lp.act("pull_request", "pr.yml", lp.pull_request_event(pr))
    assert run.rc != 0, run.output[-4000:]
    assert lp.github.comments_on(pr) == []
    assert lp.github.refusals and {u["job"] for u in lp.github.refusals} == {"comment"}


def _bad_pr(lp: Loop, branch: str, files: dict[str, str]) -> tuple[int, object]:
    lp.push_branch(branch, files, f"Bad config on {branch}")
    pr = lp.github.open_pull(branch, branch)["number"]
    lp.checkout(branch)
    return pr, lp.act("pull_request", "pr.yml", lp.pull_request_event(pr))


def test_bad_configs_fail_the_gate_with_file_and_line(make_loop) -> None:
    lp: Loop = make_loop()

    # A numbering gap: 003 with no 002 in the series.
    gap = {
        k.replace(NEW, "haha-smollm2-135m-lora-003"): v
        for k, v in experiment_files("haha-smollm2-135m-lora-003").items()
    }
    pr, run = _bad_pr(lp, "bad/gap", gap)
    assert run.rc != 0, run.output[-4000:]
    errors = run.annotations()
    # The file name is what is wrong: the annotation names the file (no line to point at).
    assert any(e.get("file") == "train/config/haha-smollm2-135m-lora-003.yml" for e in errors), errors
    (comment,) = lp.github.comments_on(pr)  # the comment is posted even though the gate failed
    assert "haha-smollm2-135m-lora-003" in comment["body"]

    # A YAML error, on line 3.
    broken = "base_model: HuggingFaceTB/SmolLM2-135M-Instruct\nadapter: lora\nlora_r: [16\n"
    lp.checkout("main")
    _, run = _bad_pr(lp, "bad/yaml", {"train/config/haha-broken-001.yml": broken})
    assert run.rc != 0
    (error,) = [e for e in run.annotations() if e.get("file") == "train/config/haha-broken-001.yml"]
    assert int(error["line"]) >= 3

    # A bad dataset line: row 3 of the dataset is not JSON.
    files = experiment_files("haha-tinybad-001", dataset="tinybad.jsonl")
    rows = files["train/data/tinybad.jsonl"].splitlines()
    rows[2] = '{"instruction": "half a row"'
    files["train/data/tinybad.jsonl"] = "\n".join(rows) + "\n"
    lp.checkout("main")
    _, run = _bad_pr(lp, "bad/data", files)
    assert run.rc != 0
    errors = [e for e in run.annotations() if e.get("file") == "train/data/tinybad.jsonl"]
    assert [e["line"] for e in errors] == ["3"], run.annotations()
