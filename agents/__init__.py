"""Reference agents, by name: a plain dict from each name to where its :class:`agents.base.Agent`
is defined.

An agent's module (with JAX, flax and optax) is imported when the agent is first asked for, so a
process that names only some agents loads only those (a manifest of the random agent loads none
of them).
"""

from __future__ import annotations

import importlib
from typing import Any

from agents.base import Agent, AgentConfig

MODULES: dict[str, tuple[str, str]] = {
    "random": ("agents.random_agent", "AGENT"),
    "sac": ("agents.sac", "AGENT"),
    "bro": ("agents.bro", "AGENT"),
    "bro_fast": ("agents.bro", "AGENT_FAST"),
    "brc": ("agents.brc", "AGENT"),
    "brc_mt": ("agents.brc", "AGENT_MT"),
    "fasttd3": ("agents.fasttd3", "AGENT"),
}
"""Agent name -> (module, attribute) of its :class:`agents.base.Agent`."""

NAMES = tuple(MODULES)


def get(name: str) -> Agent[Any, Any]:
    """The agent called ``name``; a KeyError-free lookup whose error lists the valid names."""
    from harness.errors import InputError

    if name not in MODULES:
        raise InputError(f"unknown agent {name!r}; valid agents: {', '.join(sorted(MODULES))}")
    module, attribute = MODULES[name]
    agent: Agent[Any, Any] = getattr(importlib.import_module(module), attribute)
    return agent


def every() -> list[Agent[Any, Any]]:
    """Every agent, in the order of :data:`MODULES` (imports them all)."""
    return [get(name) for name in MODULES]


__all__ = ["MODULES", "NAMES", "Agent", "AgentConfig", "every", "get"]
