"""The one page `haha rate` serves: a setup, two punchlines, four choices (keys a / b / t / s).

It knows nothing of config names: the server hands it an opaque id and two texts, and it posts
back which side won. Plain DOM and fetch, no dependencies.
"""

from __future__ import annotations

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Haha: which is funnier?</title>
<style>
body { font: 17px/1.5 -apple-system, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif;
  color: #1f2328; max-width: 1100px; margin: 0 auto; padding: 24px 32px; }
h1 { font-size: 22px; margin: 0 0 4px; } .muted { color: #656d76; font-size: 14px; }
#setup { font-size: 20px; font-weight: 600; margin: 24px 0 16px; }
.cards { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.card { border: 1px solid #d0d7de; border-radius: 8px; padding: 14px 16px; white-space: pre-wrap;
  overflow-wrap: anywhere; max-height: 24em; overflow-y: auto; min-height: 3em; }
.card h2 { font-size: 14px; margin: 0 0 6px; color: #656d76; }
.buttons { margin: 18px 0; display: flex; gap: 10px; }
button { font-size: 16px; padding: 8px 18px; border-radius: 6px; border: 1px solid #d0d7de;
  background: #f6f8fa; cursor: pointer; } button:disabled { opacity: .5; cursor: wait; }
kbd { font-size: 12px; border: 1px solid #d0d7de; border-radius: 4px; padding: 0 4px; margin-left: 6px; }
</style></head>
<body data-state="loading">
<h1>Which punchline is funnier?</h1>
<p class="muted">Blind: the configs behind A and B are hidden and their order is random.
Keys: <kbd>a</kbd> A, <kbd>b</kbd> B, <kbd>t</kbd> tie, <kbd>s</kbd> skip.
<span id="status"></span></p>
<div id="setup"></div>
<div class="cards">
  <div class="card"><h2>A</h2><div id="left"></div></div>
  <div class="card"><h2>B</h2><div id="right"></div></div>
</div>
<div class="buttons">
  <button id="vote-left" data-choice="left">A is funnier<kbd>a</kbd></button>
  <button id="vote-right" data-choice="right">B is funnier<kbd>b</kbd></button>
  <button id="vote-tie" data-choice="tie">Tie<kbd>t</kbd></button>
  <button id="vote-skip" data-choice="skip">Skip<kbd>s</kbd></button>
</div>
<p class="muted" id="where"></p>
<script>
"use strict";
let current = null, busy = false, votes = 0;
const $ = (id) => document.getElementById(id);
const KEYS = {a: "left", b: "right", t: "tie", s: "skip"};

function show(item) {
  current = item.done ? null : item;
  for (const b of document.querySelectorAll("button")) b.disabled = !current;
  if (!current) {
    $("setup").textContent = "Nothing left to rate. Thank you!";
    $("left").textContent = $("right").textContent = "";
    document.body.dataset.state = "done";
    return;
  }
  $("setup").textContent = item.prompt;
  $("left").textContent = item.left.trim() || "(empty)";
  $("right").textContent = item.right.trim() || "(empty)";
  $("where").textContent = "temperature " + item.temperature + ", seed " + item.seed;
  document.body.dataset.state = "ready";
  document.body.dataset.item = item.id;
}

async function call(path, body) {
  const init = body ? {method: "POST", headers: {"Content-Type": "application/json"},
                       body: JSON.stringify(body)} : {};
  const reply = await fetch(path, init);
  if (!reply.ok) throw new Error(path + " answered " + reply.status);
  return reply.json();
}

async function choose(choice) {
  if (!current || busy) return;
  busy = true;
  document.body.dataset.state = "sending";
  try {
    const reply = await call("/vote", {id: current.id, choice: choice});
    if (choice !== "skip") votes += 1;
    $("status").textContent = votes + " vote" + (votes === 1 ? "" : "s") + " this session, saved to "
      + reply.file + ".";
    show(reply.next);
  } catch (error) {
    $("status").textContent = "Not saved: " + error.message + ". Is `haha rate` still running?";
    document.body.dataset.state = "error";
  } finally {
    busy = false;
  }
}

for (const b of document.querySelectorAll("button")) {
  b.addEventListener("click", () => choose(b.dataset.choice));
}
document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const choice = KEYS[event.key.toLowerCase()];
  if (choice) { event.preventDefault(); choose(choice); }
});
call("/next").then(show).catch((error) => {
  $("status").textContent = "Could not load: " + error.message;
  document.body.dataset.state = "error";
});
</script>
</body></html>
"""
