"""Every `shipyard` command the README shows exists, with the options it is given: each line
of its shell blocks is resolved in the command tree (lazy groups included) and each option
checked against the command's own, without running anything."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import typer

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_commands() -> list[list[str]]:
    """The arguments after `shipyard` of each command in the README's ``sh`` blocks
    (continued lines joined, comments, pipes and following commands left out)."""
    text = README.read_text()
    commands = []
    for block in re.findall(r"```(?:sh|bash|console)\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            for part in re.split(r"&&|\|\||;|\|", line.split(" #", 1)[0]):
                words = shlex.split(part.strip().removeprefix("$ "), comments=True)
                while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
                    words.pop(0)  # SHIPYARD_USER=bob ...
                if words and words[0] == "shipyard":
                    commands.append(words[1:])
    return commands


def _option_names(command: Any) -> set[str]:
    return {name for p in command.params for name in (*p.opts, *p.secondary_opts)}


def test_every_readme_command_and_option_exists() -> None:
    from shipyard.cli.main import app

    root = typer.main.get_command(app)
    commands = readme_commands()
    assert len(commands) > 80
    problems: list[Any] = []
    for args in commands:
        command: Any = root
        ctx = root.make_context("shipyard", [], resilient_parsing=True)
        options = _option_names(root)
        rest = list(args)
        while rest and hasattr(command, "get_command"):
            word = rest.pop(0)
            if word.startswith("-"):
                if word.split("=", 1)[0] not in options:
                    problems.append((args, word))
                if "=" not in word and rest and not word.startswith("--no-"):
                    param = next((p for p in command.params if word in p.opts), None)
                    if param is not None and not getattr(param, "is_flag", False):
                        rest.pop(0)
                continue
            sub = command.get_command(ctx, word)
            if sub is None:
                problems.append((args, f"no command {word!r}"))
                break
            command = sub
            ctx = sub.make_context(word, [], parent=ctx, resilient_parsing=True)
            options |= _option_names(sub)
        for word in rest:
            is_option = word.startswith("-") and len(word) > 1 and not word[1].isdigit()
            if is_option and word.split("=", 1)[0] not in options:
                problems.append((args, word))
    assert problems == []
