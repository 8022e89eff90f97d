"""The HF-transformers engine: used where vLLM is absent (CPU machines, CI). Batched, seed-stable."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

from haha.errors import RunFailed
from haha.evaluate.engine import Progress
from haha.evaluate.requests import STOP_STRINGS, EvalRequest, clean_completion
from haha.evaluate.sampling import sample_tokens


def load_merged(base_model: str, adapter: Path | None):  # -> (model, tokenizer)
    """The base model (bf16 on CUDA, fp32 on CPU) with the adapter merged in, and its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    tokenizer_source = adapter if adapter and (adapter / "tokenizer.json").exists() else base_model
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    if tokenizer.pad_token is None:  # base tokenizers often have none; padding is masked anyway
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=dtype).to(device)
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer))
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    return model.eval(), tokenizer


class TransformersEngine:
    """Loads base model + LoRA (merged), then decodes all requests in left-padded batches.

    A hand-written decode loop rather than `generate`, so that each row samples with its own
    seeded generator (see sampling.py) and stops at its own max_tokens.
    """

    name = "transformers"

    def __init__(self, base_model: str, adapter: Path | None, batch_size: int = 256) -> None:
        self.base_model = base_model
        self.adapter = adapter
        self.batch_size = batch_size
        self._model = None
        self._tokenizer = None

    def versions(self) -> dict[str, str]:
        return {pkg: version(pkg) for pkg in ("torch", "transformers", "peft")}

    def mode(self) -> dict:
        """Per-row generators make sampling batch-independent; the matmuls are whatever torch runs
        (float32 on CPU, where the tests show batch independence; bf16 on CUDA, where it is not
        guaranteed), so no batch-invariant mode is claimed."""
        dtype = None if self._model is None else str(self._model.dtype).removeprefix("torch.")
        return {"batch_invariant": False, "dtype": dtype}

    def _load(self) -> None:
        self._model, self._tokenizer = load_merged(self.base_model, self.adapter)
        vocab = self._tokenizer.get_vocab()
        self._stop_ids = {vocab[t] for t in STOP_STRINGS if t in vocab}
        # Base models without ChatML tokens (Llama-3) spell <|im_end|> in pieces: stop on the text.
        self._text_stops = tuple(t for t in STOP_STRINGS if t not in vocab)
        if self._tokenizer.eos_token_id is not None:
            self._stop_ids.add(self._tokenizer.eos_token_id)

    def generate(self, requests: list[EvalRequest], progress: Progress | None = None) -> list[str]:
        import torch

        if self._model is None:
            self._load()
        # Longest first: batches of similar length waste less on padding. Order is restored below.
        order = sorted(range(len(requests)), key=lambda i: -len(requests[i].text))
        out: list[str] = [""] * len(requests)
        done = 0
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            try:
                with torch.inference_mode():
                    texts = self._decode_batch([requests[i] for i in chunk], done, len(requests), progress)
            except torch.OutOfMemoryError as exc:
                raise RunFailed(
                    f"out of memory while evaluating a batch of {len(chunk)}",
                    fix="lower eval_batch_size in haha.toml, or max_tokens in eval.json",
                ) from exc
            for i, text in zip(chunk, texts, strict=True):
                out[i] = text
            done += len(chunk)
        return out

    def _decode_batch(self, batch: list[EvalRequest], done: int, total: int, progress: Progress | None):
        """Prefill each distinct prompt once, then decode one token per step for the rows still running.

        eval.json repeats every prompt for each setting and seed, so the KV cache of one prefill is
        copied to all its rows (what vLLM's prefix caching does). Finished rows leave the batch and
        the cache, so short punchlines don't pay for long ones.
        """
        import torch

        tok, model = self._tokenizer, self._model
        device = model.device
        texts = list(dict.fromkeys(r.text for r in batch))
        enc = tok(texts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
        ids, mask = enc.input_ids.to(device), enc.attention_mask.to(device)
        prompts = [ids[i][mask[i].bool()].cpu() for i in range(len(texts))]
        result = model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
            use_cache=True,
            logits_to_keep=1,
        )
        rows = torch.tensor([texts.index(r.text) for r in batch], device=device)
        past = result.past_key_values
        past.batch_select_indices(rows)
        logits = result.logits[rows, -1, :]
        mask = mask[rows]
        positions = mask.sum(-1, keepdim=True) - 1
        prompts = [prompts[int(i)] for i in rows]
        generators = [torch.Generator().manual_seed(r.seed) for r in batch]
        produced: list[list[int]] = [[] for _ in batch]
        active = list(range(len(batch)))
        while active:
            tokens = sample_tokens(
                logits.float().cpu(),
                [batch[i].sampling for i in active],
                [prompts[i] for i in active],
                [torch.tensor(produced[i], dtype=torch.long) for i in active],
                [generators[i] for i in active],
            )
            keep = []
            for row, (i, token) in enumerate(zip(active, tokens, strict=True)):
                produced[i].append(token)
                if not self._stopped(produced[i]) and len(produced[i]) < batch[i].sampling.max_tokens:
                    keep.append(row)
            if progress:
                progress(done + len(batch) - len(keep), total)
            if len(keep) < len(active):
                index = torch.tensor(keep, device=device, dtype=torch.long)
                past.batch_select_indices(index)
                tokens = [tokens[row] for row in keep]
                mask, positions = mask[index], positions[index]
                active = [active[row] for row in keep]
            if not active:
                break
            step_ids = torch.tensor(tokens, device=device, dtype=torch.long).unsqueeze(1)
            mask = torch.cat([mask, torch.ones_like(step_ids)], dim=1)
            positions = positions + 1
            result = model(
                input_ids=step_ids,
                attention_mask=mask,
                position_ids=positions,
                past_key_values=past,
                use_cache=True,
                logits_to_keep=1,
            )
            past, logits = result.past_key_values, result.logits[:, -1, :]
        return [clean_completion(tok.decode(self._strip_stop(p), skip_special_tokens=True)) for p in produced]

    def _stopped(self, tokens: list[int]) -> bool:
        if tokens[-1] in self._stop_ids:
            return True
        return bool(self._text_stops) and any(
            t in self._tokenizer.decode(tokens[-8:]) for t in self._text_stops
        )

    def _strip_stop(self, tokens: list[int]) -> list[int]:
        return tokens[:-1] if tokens and tokens[-1] in self._stop_ids else tokens
