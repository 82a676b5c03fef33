"""Environment adapters, VecEnv and evaluate, on the real simulators."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from harness import catalog
from harness.envs import ADAPTERS, Env, make
from harness.envs.vector import VecEnv, episode_seed, evaluate
from harness.errors import InputError

os.environ.setdefault("MUJOCO_GL", "disable")

# One task per adapter: each randomises its initial state, none terminates under random actions.
TASKS = {
    "dmc/cartpole-balance": "dm_control",
    "metaworld/reach": "metaworld",
    "myosuite/myo-reach-hard": "myosuite",
    "playground/CartpoleBalance": "mujoco_playground",
}
MAKE_SEED = 3
pytestmark = pytest.mark.filterwarnings("ignore:Attaching a spec with an empty prefix")  # MyoSuite's


@pytest.fixture(scope="module", params=sorted(TASKS))
def made(request: pytest.FixtureRequest) -> Iterator[tuple[Env, np.ndarray]]:
    """An env of each adapter (built once: Playground compiles for seconds) and its first reset's obs."""
    pytest.importorskip(TASKS[request.param])
    env = make(request.param, MAKE_SEED)
    first_obs, _ = env.reset()
    yield env, first_obs
    env.close()


@pytest.fixture
def env(made: tuple[Env, np.ndarray]) -> Env:
    return made[0]


def rollout(env: Env, seed: int, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reset with ``seed`` and step ``actions (T, act)``: (first obs, rewards (T,), last obs)."""
    first, _ = env.reset(seed=seed)
    rewards, obs = [], first
    for action in actions:
        obs, reward, _, _, _ = env.step(action)
        rewards.append(reward)
    return first, np.array(rewards), obs


def test_importing_harness_envs_loads_no_simulator() -> None:
    code = ("import sys, harness.envs; "
            "print([m for m in ('mujoco', 'dm_control', 'metaworld', 'myosuite', 'mujoco_playground', 'jax')"
            " if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_adapters_cover_every_suite() -> None:
    assert set(ADAPTERS) == set(catalog.SUITES)


def test_full_episode_has_the_harness_conventions(env: Env) -> None:
    task = env.task
    obs, info = env.reset(seed=0)
    assert obs.shape == (env.observation_size,) and obs.dtype == np.float32 and np.isfinite(obs).all()
    assert ("success" in info) == (task.metric == "success")
    rng = np.random.default_rng(0)
    steps, done = 0, False
    while not done:
        obs, reward, terminated, truncated, info = env.step(rng.uniform(-1, 1, env.action_size))
        steps += 1
        done = terminated or truncated
        assert obs.shape == (env.observation_size,) and obs.dtype == np.float32 and np.isfinite(obs).all()
        assert isinstance(reward, float) and np.isfinite(reward)
        assert not terminated
        if task.metric == "success":
            assert info["success"] in (0.0, 1.0)
    # cartpole, Playground: 1000 // 1; MetaWorld: 200 // 1; myo-reach-hard: 100 // 1.
    assert steps == task.episode_length // task.action_repeat
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(env.action_size))


def test_same_seed_same_trajectory_other_seed_other_start(env: Env) -> None:
    actions = np.random.default_rng(1).uniform(-1, 1, (20, env.action_size))
    first_a, rewards_a, last_a = rollout(env, 11, actions)
    first_b, rewards_b, last_b = rollout(env, 11, actions)
    np.testing.assert_array_equal(first_a, first_b)
    np.testing.assert_array_equal(rewards_a, rewards_b)
    np.testing.assert_array_equal(last_a, last_b)
    first_c, _ = env.reset(seed=12)
    assert not np.array_equal(first_a, first_c)


def test_reset_without_seed_continues_the_stream(env: Env) -> None:
    env.reset(seed=5)
    second, third = env.reset()[0], env.reset()[0]
    assert not np.array_equal(second, third)
    env.reset(seed=5)
    np.testing.assert_array_equal(env.reset()[0], second)


def test_first_reset_is_seeded_by_make(made: tuple[Env, np.ndarray]) -> None:
    env, first_obs = made
    np.testing.assert_array_equal(env.reset(seed=MAKE_SEED)[0], first_obs)


def test_out_of_range_actions_are_clipped_bad_actions_rejected(env: Env) -> None:
    actions = np.random.default_rng(2).uniform(-3, 3, (10, env.action_size))
    _, rewards_wide, last_wide = rollout(env, 4, actions)
    _, rewards_clipped, last_clipped = rollout(env, 4, np.clip(actions, -1, 1))
    np.testing.assert_array_equal(rewards_wide, rewards_clipped)
    np.testing.assert_array_equal(last_wide, last_clipped)
    with pytest.raises(ValueError, match="non-finite"):
        env.step(np.full(env.action_size, np.nan))
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(env.action_size + 1))


def test_clipping_matters_where_the_simulator_does_not_clip() -> None:
    # LQR's controls are unbounded (dm-control declares +-1e10): the adapter passes [-1, 1] through
    # unscaled, and clips 3.0 to 1.0 itself, since the physics would not.
    env = make("dmc/lqr-lqr-2-1", 0)
    _, rewards_wide, last_wide = rollout(env, 0, np.full((5, env.action_size), 3.0))
    _, rewards_one, last_one = rollout(env, 0, np.full((5, env.action_size), 1.0))
    np.testing.assert_array_equal(rewards_wide, rewards_one)
    np.testing.assert_array_equal(last_wide, last_one)
    assert np.abs(last_one).max() < 10.0  # not a control of 1e10


@pytest.mark.parametrize(("episode_length", "repeat", "agent_steps"), [(1000, 4, 250), (10, 3, 3)])
def test_action_repeat_sums_rewards_and_truncates(episode_length: int, repeat: int, agent_steps: int) -> None:
    base = catalog.resolve("dmc/cartpole-balance")
    single = make(base, 0)
    repeated = make(dataclasses.replace(base, episode_length=episode_length, action_repeat=repeat), 0)
    single.reset(seed=0)
    repeated.reset(seed=0)
    actions = np.random.default_rng(3).uniform(-1, 1, (agent_steps, 1))
    for k, action in enumerate(actions):
        # One repeated step = `repeat` single steps with the same action, rewards summed.
        total = 0.0
        for _ in range(repeat):
            obs_single, reward, _, _, _ = single.step(action)
            total += reward
        obs, reward_repeated, terminated, truncated, _ = repeated.step(action)
        np.testing.assert_array_equal(obs, obs_single)
        assert reward_repeated == pytest.approx(total, rel=1e-12)
        assert not terminated and truncated == (k == agent_steps - 1)


@pytest.mark.parametrize("name", ["reach", "button-press"])
@pytest.mark.filterwarnings("ignore:Constant")
def test_metaworld_scripted_policy_succeeds_through_the_adapter(name: str) -> None:
    # Building any MetaWorld env under MuJoCo 3.17 needs the adapter's weld fix; the scripted policy
    # succeeding shows the welds drive the arm as MetaWorld intends.
    policies = pytest.importorskip("metaworld.policies")
    env = make(f"metaworld/{name}", 0)
    policy = policies.ENV_POLICY_MAP[env.task.env_id]()
    obs, info = env.reset()
    successes, done = [info["success"]], False
    while not done:
        obs, _, terminated, truncated, info = env.step(np.clip(policy.get_action(obs), -1, 1))
        successes.append(info["success"])
        done = terminated or truncated
    assert successes[-1] == 1.0
    assert successes == sorted(successes)  # once solved, the episode counts as solved


def test_myosuite_any_registered_id_takes_its_registered_length() -> None:
    pytest.importorskip("myosuite")
    env = make("myosuite/myoSarcHandPenTwirlFixed-v0", 0)
    assert env.task.episode_length == 50  # its registration's max_episode_steps
    with pytest.raises(InputError, match="not a registered MyoSuite id"):
        make("myosuite/myoNoSuchTask-v0", 0)


def test_make_refuses_unknown_unrunnable_and_uninstalled(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match="unknown task"):
        make("dmc/no-such-task", 0)
    published_only = dataclasses.replace(catalog.resolve("dmc/cheetah-jump"), runnable=False,
                                         note="published results only")
    with pytest.raises(InputError, match="cannot be run by the harness: published results only"):
        make(published_only, 0)
    monkeypatch.setitem(sys.modules, "metaworld", None)  # what find_spec reports for a missing package
    with pytest.raises(InputError, match=r"harness\[metaworld\]"):
        make("metaworld/reach", 0)


def test_playground_menagerie_tasks_explain_how_to_provide_menagerie(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("mujoco_playground")
    from harness.envs import playground

    monkeypatch.delenv("HARNESS_MENAGERIE", raising=False)
    monkeypatch.setattr(playground, "installed_menagerie", lambda: [])  # as without the playground extra
    with pytest.raises(InputError, match=r"pip install 'harness\[playground\]'.*or set HARNESS_MENAGERIE"):
        make("playground/Go1JoystickFlatTerrain", 0)
    monkeypatch.setenv("HARNESS_MENAGERIE", str(tmp_path / "absent"))
    with pytest.raises(InputError, match="is not a folder"):
        make("playground/Go1JoystickFlatTerrain", 0)


# ------------------------------------------------------------------------------------------------
# VecEnv and evaluate


def short_cartpole(episode_length: int) -> catalog.Task:
    return dataclasses.replace(catalog.resolve("dmc/cartpole-balance"), episode_length=episode_length)


def test_vecenv_auto_resets_and_reports_episode_returns() -> None:
    vec = VecEnv([make(short_cartpole(3), 0), make(short_cartpole(5), 1)])
    reference = make(short_cartpole(3), 0)  # replays env 0 by hand
    obs = vec.reset([10, 11])
    np.testing.assert_array_equal(obs[0], reference.reset(seed=10)[0])
    rewards, results = [], []
    for _ in range(10):
        result = vec.step(np.zeros((2, 1)))
        rewards.append(result.reward)
        results.append(result)
    reward = np.array(rewards)  # (10 steps, 2 envs)
    ended = np.array([r.truncated for r in results])  # (10, 2)
    # Env 0's episodes last 3 steps (they end at steps 3, 6, 9), env 1's 5 (steps 5, 10).
    np.testing.assert_array_equal(np.flatnonzero(ended[:, 0]) + 1, [3, 6, 9])
    np.testing.assert_array_equal(np.flatnonzero(ended[:, 1]) + 1, [5, 10])
    assert not np.array([r.terminated for r in results]).any()
    assert [r.ended for r in results] == [bool(e.any()) for e in ended]
    for t, r in enumerate(results, start=1):
        for i, length in enumerate((3, 5)):
            if t % length == 0:  # its return is the sum of the episode's rewards
                assert r.episode_return[i] == pytest.approx(reward[t - length:t, i].sum(), rel=1e-12)
            else:
                assert np.isnan(r.episode_return[i])
        assert np.isnan(r.episode_success).all()  # a return-metric task
    # At step 3 env 0's next_obs is its final observation, obs the first of its next episode, seeded
    # from the env's reset seed and the episode's number (so that a checkpoint can replay it).
    for _ in range(3):
        final, _, _, _, _ = reference.step(np.zeros(1))
    np.testing.assert_array_equal(results[2].next_obs[0], final)
    np.testing.assert_array_equal(results[2].obs[0], reference.reset(seed=episode_seed(10, 1))[0])
    assert not np.array_equal(results[2].obs[0], results[2].next_obs[0])
    np.testing.assert_array_equal(results[1].obs, results[1].next_obs)  # no episode ended at step 2


@pytest.mark.filterwarnings("ignore:Constant")
def test_vecenv_reports_episode_success() -> None:
    policies = pytest.importorskip("metaworld.policies")
    task = dataclasses.replace(catalog.resolve("metaworld/reach"), episode_length=100)
    vec = VecEnv([make(task, 0)])
    policy = policies.ENV_POLICY_MAP["reach-v3"]()
    obs = vec.reset([0])
    ends = []
    for _ in range(200):
        result = vec.step(np.clip(policy.get_action(obs[0]), -1, 1)[None])
        obs = result.obs
        if result.truncated[0]:
            ends.append(result)
        else:
            assert np.isnan(result.episode_success[0]) and np.isnan(result.episode_return[0])
    assert [r.episode_success[0] for r in ends] == [1.0, 1.0]
    assert all(r.episode_return[0] > 0 for r in ends)


def test_vecenv_refuses_mismatched_envs_and_actions() -> None:
    with pytest.raises(InputError, match="share observation and action sizes"):
        VecEnv([make("dmc/cartpole-balance", 0), make("dmc/pendulum-swingup", 0)])
    vec = VecEnv([make("dmc/cartpole-balance", 0)])
    vec.reset([0])
    with pytest.raises(ValueError, match="actions shape"):
        vec.step(np.zeros((2, 1)))


def test_evaluate_is_deterministic_and_matches_a_hand_rollout() -> None:
    envs = [make(short_cartpole(20), 0), make(short_cartpole(20), 1)]

    def zero_policy(obs: np.ndarray) -> np.ndarray:
        return np.zeros((obs.shape[0], 1))

    returns, successes = evaluate(envs, zero_policy, episodes=3, seed=7)
    assert returns.shape == successes.shape == (2, 3)
    assert np.isnan(successes).all()
    again, _ = evaluate(envs, zero_policy, episodes=3, seed=7)
    np.testing.assert_array_equal(returns, again)
    # Env 1's first episode starts from reset(seed=s_1), s_1 the second word of SeedSequence(7).
    reference = make(short_cartpole(20), 99)
    reference.reset(seed=int(np.random.SeedSequence(7).generate_state(2)[1]))
    expected = sum(reference.step(np.zeros(1))[1] for _ in range(20))
    assert returns[1, 0] == pytest.approx(expected, rel=1e-12)
    assert len(set(returns[0])) == 3  # later episodes start elsewhere (the env's own stream)


@pytest.mark.filterwarnings("ignore:Constant")
def test_evaluate_reports_success() -> None:
    policies = pytest.importorskip("metaworld.policies")
    task = dataclasses.replace(catalog.resolve("metaworld/reach"), episode_length=100)
    policy = policies.ENV_POLICY_MAP["reach-v3"]()

    def scripted(obs: np.ndarray) -> np.ndarray:
        return np.stack([np.clip(policy.get_action(o), -1, 1) for o in obs])

    _, successes = evaluate([make(task, 0), make(task, 1)], scripted, episodes=2, seed=0)
    np.testing.assert_array_equal(successes, np.ones((2, 2)))


def _first_task_per_domain() -> list[str]:
    """One catalog task of every dm-control domain, TD-MPC2's custom tasks' included (RK4: acrobot,
    cartpole; 1 to 15 physics steps per control step; LQR's termination)."""
    first: dict[str, str] = {}
    for task in catalog.all_tasks():
        if task.suite == "dmc" and task.runnable:
            first.setdefault(task.env_id.split("-")[0] + ("-custom" if task.env_id in DMC_CUSTOM else ""), task.name)
    return sorted(first.values())


DMC_CUSTOM = set(catalog.TDMPC2_CUSTOM_DMC_IDS.values())


@pytest.mark.parametrize("name", _first_task_per_domain())
def test_dmc_steps_are_bit_for_bit_dm_controls_own(name: str) -> None:
    """The adapter steps the physics without dm-control's Environment and Physics wrappers: the same
    observations, rewards and terminations, to the bit, as dm-control's own ``env.step``."""
    from dm_control import suite
    from dm_control.rl import control

    from harness.envs import dmc, dmc_custom

    task = catalog.resolve(name)
    ours = dmc.DMCSimulator(task, seed=5)
    if task.env_id in dmc_custom.TASKS:
        theirs = dmc_custom.load(task.env_id, random=5)
    else:
        domain, task_name = task.env_id.split("-", 1)
        theirs = suite.load(domain, task_name, task_kwargs={"random": 5, "time_limit": float("inf")})
    if not dmc.can_render():
        dmc._without_rendering(theirs.physics)  # quadruped-escape's reset asks for rendering contexts
    spec = theirs.action_spec()
    wide = (np.abs(spec.minimum) >= 1e6) | (np.abs(spec.maximum) >= 1e6)
    low, high = np.where(wide, -1.0, spec.minimum), np.where(wide, 1.0, spec.maximum)
    np.testing.assert_array_equal(ours.reset(None), dmc._flatten(theirs.reset().observation))
    actions = np.random.default_rng(0).uniform(-1.0, 1.0, (120, ours.action_size))  # (T, act)
    for action in actions:
        step = ours.step(action)
        timestep = theirs.step(low + (action + 1.0) * 0.5 * (high - low))
        assert step.obs.tobytes() == dmc._flatten(timestep.observation).tobytes()
        assert step.reward == float(timestep.reward) and step.terminated == timestep.last()
    # A diverged simulation is dm-control's PhysicsError, with dm-control's message.
    with pytest.raises(control.PhysicsError) as mine:
        ours.step(np.full(ours.action_size, np.nan))
    with pytest.raises(control.PhysicsError) as own:
        theirs.step(np.full(ours.action_size, np.nan))
    assert str(mine.value) == str(own.value)
    ours.close()
    theirs.close()
