"""Reward conditioning of a job: what training and evaluation do with its tasks' reward families.

A job of a reward-conditioned manifest (:class:`harness.jobs.PsiSettings`) has a
:class:`Conditioning`. Its envs measure every step's reward components, which the replay keeps.

- A conditioned agent (``variant: reward_conditioned``) sees the observation with the normalised ψ
  appended (:func:`harness.rewards.normalise`, zero-padded to the job's largest family): ψ* while
  it collects experience, and at every update a ψ drawn for each sampled transition from
  α·δ(ψ*) + (1 - α)·p_Ψ (:func:`harness.rewards.draw_psi`), with the transition's rewards
  recomputed as r_ψ from the stored components (:meth:`harness.replay.Replay.sample`).
- An unconditioned reference agent (``psi.references``) is trained on one named evaluation ψ: its
  sampled transitions are relabelled with that ψ, and its observations are left as they are.
- Every agent of such a manifest, conditioned or not, is evaluated under ψ* and each named
  evaluation ψ: the episode is scored with r_ψ of its components; a conditioned policy is given ψ.

The same code serves single-task and multi-task jobs: task ``t`` of the job has family
``families[t]``; ψ inputs and components are padded to the widest family.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness import catalog, rewards
from harness.jobs import Job, PsiSettings
from harness.runfiles import NOMINAL_PSI

Psi = list[dict[str, Any]]
"""ψ of sampled transitions: per task of the job, parameter -> values (*P) (or one number for all)."""


@dataclass(frozen=True)
class Conditioning:
    """The reward families of a job's tasks and its ψ settings; ``conditioned``: the agent sees ψ."""

    tasks: tuple[str, ...]
    families: tuple[rewards.Family, ...]
    settings: PsiSettings
    conditioned: bool
    repeat: int
    """Sub-steps of a transition (the tasks' action repeat)."""
    train_psi: str | None = None
    """The named evaluation ψ an unconditioned reference agent trains on (None: ψ*, or drawn)."""

    @staticmethod
    def of(job: Job) -> Conditioning | None:
        """The job's conditioning; None for a job outside a reward-conditioned manifest."""
        if job.psi is None:
            return None
        return Conditioning(job.tasks, tuple(rewards.family(t) for t in job.tasks), job.psi,
                            job.variant == "reward_conditioned",
                            max(catalog.resolve(t).action_repeat for t in job.tasks), job.train_psi)

    @property
    def relabels(self) -> bool:
        """Whether training recomputes rewards from components (a conditioned agent or a reference)."""
        return self.conditioned or self.train_psi is not None

    @property
    def width(self) -> int:
        """Entries appended to the agent's observation: the most parameters of a family (0 unconditioned)."""
        return max(len(f.params) for f in self.families) if self.conditioned else 0

    @property
    def components(self) -> int:
        """Reward components per sub-step: the most of a family."""
        return max(len(f.components) for f in self.families)

    def nominal(self, t: int) -> dict[str, float]:
        """ψ* of task ``t``."""
        return dict(self.families[t].nominal[self.tasks[t]])

    def evaluation(self, label: str, t: int) -> dict[str, float] | None:
        """The ψ named ``label`` for task ``t`` (``nominal``: ψ*; None where the task has no such ψ)."""
        if label == NOMINAL_PSI:
            return self.nominal(t)
        found = [dict(e.psi) for e in self.settings.evaluations if e.label == label and e.task == self.tasks[t]]
        return found[0] if found else None

    def inputs(self, psis: list[dict[str, Any]], task: np.ndarray) -> np.ndarray:
        """The agent's ψ input (*P, width) for ψ ``psis[t]`` (values (*P) or numbers) of each task of
        ``task (*P)``, zero-padded to the width (none for an unconditioned agent)."""
        out = np.zeros((*task.shape, self.width), np.float32)
        if not self.conditioned:
            return out
        for t, fam in enumerate(self.families):
            size = len(fam.params)
            values = {k: np.broadcast_to(np.asarray(v, np.float64), task.shape) for k, v in psis[t].items()}
            out[..., :size] = np.where((task == t)[..., None], rewards.normalise(np, fam, values), out[..., :size])
        return out

    def condition(self, obs: np.ndarray, psi_input: np.ndarray) -> np.ndarray:
        """obs (..., obs) with the ψ input (..., width) appended; unchanged for an unconditioned agent."""
        if not self.conditioned:
            return obs
        return np.concatenate([obs, psi_input.astype(obs.dtype)], axis=-1)

    # -- training: the replay's Relabeller ----------------------------------------------------------

    def draw(self, rng: np.random.Generator, task: np.ndarray) -> tuple[Psi, np.ndarray]:
        """ψ for sampled transitions of tasks ``task (*P)``, drawn per transition (each task's family
        draws for all of them; a transition uses its own task's), and their input (*P, width). A
        reference agent's transitions all get its ψ (ψ* for a task without it), and no input."""
        if self.train_psi is not None:
            fixed = [self.evaluation(self.train_psi, t) or self.nominal(t) for t in range(len(self.tasks))]
            return fixed, self.inputs(fixed, task)
        u = rng.random((*task.shape, 1 + self.width))  # (*P, 1 + width)
        psis = [rewards.draw_psi(np, fam, self.nominal(t), self.settings.alpha, u[..., : 1 + len(fam.params)],
                                 self.settings.distribution) for t, fam in enumerate(self.families)]
        return psis, self.inputs(psis, task)

    def reward(self, psi: Psi, task: np.ndarray, components: np.ndarray) -> np.ndarray:
        """r_ψ (*P) of one step from its components (*P, repeat, components), each by its task's family."""
        out = np.zeros(task.shape, np.float32)
        for t, fam in enumerate(self.families):
            relabelled = rewards.relabel(np, fam, psi[t], components[..., : len(fam.components)])
            out = np.where(task == t, relabelled, out)
        return out

    # -- evaluation ---------------------------------------------------------------------------------

    def score(self, labels: tuple[str, ...], task: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """``score(components (n, repeat, components)) -> (n, len(labels))``: each env's step reward under
        each named ψ of its task ``task (n,)`` (0 where its task has no such ψ)."""

        def score(components: np.ndarray) -> np.ndarray:
            out = np.zeros((len(task), len(labels)))
            for j, label in enumerate(labels):
                for t, fam in enumerate(self.families):
                    psi = self.evaluation(label, t)
                    rows = task == t
                    if psi is not None and rows.any():
                        out[rows, j] = rewards.relabel(np, fam, psi, components[rows][..., : len(fam.components)])
            return out

        return score
