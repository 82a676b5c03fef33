"""Reference agents, by name: a plain dict of :class:`agents.base.Agent` objects."""

from __future__ import annotations

from typing import Any

from agents import brc, bro, fasttd3, random_agent, sac
from agents.base import Agent, AgentConfig

AGENTS: dict[str, Agent[Any, Any]] = {
    a.name: a
    for a in (
        random_agent.AGENT,
        sac.AGENT,
        bro.AGENT,
        bro.AGENT_FAST,
        brc.AGENT,
        brc.AGENT_MT,
        fasttd3.AGENT,
    )
}


def get(name: str) -> Agent[Any, Any]:
    """The agent called ``name``; a KeyError-free lookup whose error lists the valid names."""
    from harness.errors import InputError

    if name not in AGENTS:
        raise InputError(f"unknown agent {name!r}; valid agents: {', '.join(sorted(AGENTS))}")
    return AGENTS[name]


__all__ = ["AGENTS", "Agent", "AgentConfig", "get"]
