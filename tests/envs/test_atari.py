"""The Atari adapter over ale-py's vector env: specs, preprocessing, episode boundaries."""

import tfa_suite  # noqa: F401  isort: skip

import csv
import os

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.agents.categorical_dqn import categorical_dqn_agent
from tf_agents.trajectories import time_step as ts

from tfa_suite.config import EVAL_SEED_OFFSET
from tfa_suite.envs.atari import AtariEnvironment
from tfa_suite.envs.atari_eval import channels_last, run_atari_episodes
from tfa_suite.errors import UserError
from tfa_suite.policy.saved import SavedPolicy
from tfa_suite.replay.frame_store import FrameStoreReplay
from tfa_suite.run.train import build, resolve_config, train

FIRST, MID, LAST = (int(t) for t in (ts.StepType.FIRST, ts.StepType.MID, ts.StepType.LAST))


def play(env: AtariEnvironment, steps: int, seed: int = 0) -> list[ts.TimeStep]:
    rng = np.random.default_rng(seed)
    out = [env.reset()]
    n = env.action_spec().maximum + 1
    for _ in range(steps):
        out.append(env.step(rng.integers(0, n, size=env.batch_size)))
    return out


def test_specs_and_preprocessed_observations():
    env = AtariEnvironment("pong", num_envs=2, seed=0, training=True)
    assert env.batched and env.batch_size == 2
    spec = env.observation_spec()
    assert spec.shape == (84, 84, 4) and spec.dtype == np.uint8
    assert env.action_spec().dtype == np.int64 and env.action_spec().maximum == 5
    steps = play(env, 20)
    for step in steps:
        assert step.observation.shape == (2, 84, 84, 4)
        assert step.observation.dtype == np.uint8
        assert step.reward.dtype == np.float32 and step.discount.dtype == np.float32
    # Channels last, newest frame last: each step shifts the stack by one frame.
    a, b = steps[10].observation, steps[11].observation
    np.testing.assert_array_equal(b[..., :3], a[..., 1:])
    env.close()


@pytest.mark.parametrize("shape", [(8, 2, 210, 160), (3, 4, 84, 84), (1, 1, 5, 7)])
def test_channels_last_moves_ale_pys_stack_axis_last(shape):
    obs = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    out = channels_last(obs)
    assert out.shape == (shape[0], shape[2], shape[3], shape[1]) and out.dtype == np.uint8
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, np.moveaxis(obs, 1, -1))


def test_same_seed_same_frames_and_rewards():
    runs = []
    for seed in (3, 3, 4):
        env = AtariEnvironment("pong", num_envs=2, seed=seed, training=True)
        runs.append(play(env, 50))
        env.close()
    for x, y in zip(runs[0], runs[1]):
        np.testing.assert_array_equal(x.observation, y.observation)
        np.testing.assert_array_equal(x.reward, y.reward)
    # The seed matters (no-op starts): another seed plays other frames, and so do the two
    # envs of one batch.
    frames = [np.stack([s.observation for s in run]) for run in runs]
    assert not np.array_equal(frames[0], frames[2])
    assert not np.array_equal(frames[0][:, 0], frames[0][:, 1])


def test_breakout_life_loss_is_terminal_for_learning_but_the_game_continues():
    env = AtariEnvironment("breakout", num_envs=1, seed=0, training=True)
    steps = play(env, 600)
    kinds = np.array([int(s.step_type[0]) for s in steps])
    discounts = np.array([float(s.discount[0]) for s in steps])
    life_losses = np.flatnonzero((kinds == MID) & (discounts == 0.0))
    assert len(life_losses) >= 4, "random play loses lives within 600 steps"
    # A life loss does not restart the game: the step after it is MID, not FIRST.
    assert all(kinds[i + 1] == MID for i in life_losses if i + 1 < len(kinds))
    # The game ends (LAST, discount 0) only after all five lives, then restarts (FIRST).
    ends = np.flatnonzero(kinds == LAST)
    assert len(ends) >= 1 and discounts[ends[0]] == 0.0
    assert kinds[ends[0] + 1] == FIRST
    assert len(life_losses[life_losses < ends[0]]) == 4
    env.close()


def breakout_tracker(observations: np.ndarray) -> np.ndarray:
    """FIRE (1) until the ball is in play, then move the paddle under it (RIGHT 2, LEFT 3).

    It scores well enough to break through to Breakout's 4-point rows, which random play
    never reaches, so clipped and true rewards differ.
    """
    actions = []
    for frame in observations[..., -1].astype(int):
        ball = np.argwhere(frame[38:75, 5:79] > 40)  # below the bricks, above the paddle
        paddle = np.flatnonzero(frame[76, 5:79] > 100)
        if len(ball) == 0 or len(paddle) == 0:
            actions.append(1)
            continue
        offset = ball[:, 1].mean() - paddle.mean()
        actions.append(2 if offset > 1 else 3 if offset < -1 else 0)
    return np.array(actions, np.int64)


@pytest.fixture(scope="module")
def breakout_game():
    """One whole game of Breakout, played in lockstep on an evaluation and a training env.

    Both emulators get the same seed and the same actions (the tracker, with 10% random
    actions), so they play the very same game and differ only in what the adapter reports.
    """
    rng = np.random.default_rng(2)
    envs = {t: AtariEnvironment("breakout", num_envs=1, seed=2, training=t) for t in (False, True)}
    steps = {t: [env.reset()] for t, env in envs.items()}
    actions = []
    try:
        while int(steps[False][-1].step_type[0]) != LAST:
            action = breakout_tracker(steps[False][-1].observation)
            if rng.random() < 0.1:
                action = rng.integers(0, 4, size=1)
            actions.append(action)
            for training, env in envs.items():
                steps[training].append(env.step(action))
    finally:
        for env in envs.values():
            env.close()

    def field(training: bool, name: str) -> np.ndarray:
        return np.array([getattr(s, name)[0] for s in steps[training]])

    same = all(np.array_equal(a.observation, b.observation) for a, b in zip(*steps.values()))
    return {
        "same_frames": same,
        "actions": actions,
        "kinds": {t: field(t, "step_type") for t in (False, True)},
        "rewards": {t: field(t, "reward") for t in (False, True)},
        "discounts": {t: field(t, "discount") for t in (False, True)},
    }


def test_rewards_are_clipped_for_training_only(breakout_game):
    assert breakout_game["same_frames"]  # one game, seen twice
    true, clipped = breakout_game["rewards"][False], breakout_game["rewards"][True]
    # Breakout's bricks are worth 1, 4 or 7 points; training sees each reward's sign.
    assert true.max() > 1.0, "the tracker broke no 4- or 7-point brick"
    np.testing.assert_array_equal(clipped, np.sign(true))


def test_evaluation_keeps_whole_games_and_true_scores(breakout_game):
    kinds, discounts = breakout_game["kinds"], breakout_game["discounts"]
    # Training ends the bootstrap at each of the first four lost lives and the game at the
    # fifth; evaluation sees one episode, the whole game, ending on the same step.
    life_losses = np.flatnonzero((kinds[True] == MID) & (discounts[True] == 0.0))
    assert len(life_losses) == 4
    assert np.flatnonzero(kinds[True] == LAST).tolist() == [len(kinds[True]) - 1]
    assert np.flatnonzero(kinds[False] == LAST).tolist() == [len(kinds[False]) - 1]
    assert np.all(discounts[False][:-1] == 1.0) and discounts[False][-1] == 0.0
    # The evaluation function scores that game as the sum of its true rewards.
    replay = iter(breakout_game["actions"])
    returns, lengths = run_atari_episodes(
        lambda obs: next(replay), "breakout", {}, num_episodes=1, seed=2
    )
    assert lengths.tolist() == [len(breakout_game["actions"])]
    assert returns.tolist() == [breakout_game["rewards"][False].sum()]


def test_the_step_after_a_game_ends_is_a_reset_with_zero_reward():
    env = AtariEnvironment("pong", num_envs=1, seed=0, training=True)
    # A random Pong game lasts ~800-1000 agent steps; run until one ends.
    rng = np.random.default_rng(0)
    step = env.reset()
    for _ in range(3000):
        prev = step
        step = env.step(rng.integers(0, 6, size=1))
        if int(prev.step_type[0]) == LAST:
            assert int(step.step_type[0]) == FIRST
            assert float(step.reward[0]) == 0.0 and float(step.discount[0]) == 1.0
            break
    else:
        pytest.fail("no Pong game ended within 3000 steps")
    env.close()


def test_unknown_game_is_a_user_error():
    with pytest.raises(UserError, match="no_such_game"):
        AtariEnvironment("no_such_game", num_envs=1, seed=0, training=True)


def play_whole_game(policy, game: str, seed: int) -> np.ndarray:
    """The unclipped rewards of one game of `policy` on a fresh evaluation env."""
    env = AtariEnvironment(game, num_envs=1, seed=seed, training=False)
    try:
        step, rewards = env.reset(), []
        while int(step.step_type[0]) != LAST:
            step = env.step(policy(step.observation))
            rewards.append(float(step.reward[0]))
        return np.array(rewards)
    finally:
        env.close()


def test_atari_training_smoke_run_writes_outputs(tmp_path, tiny_config):
    config = tiny_config(
        tmp_path / "pong",
        env="ALE/Pong-v5",
        conv_layers="16:8:4,32:4:2",
        fc_layers=[32],
        replay_capacity=1_000,
        initial_collect_steps=64,
        num_env_steps=160,
        eval_episodes=1,
        metrics_interval=80,
    )
    result = train(config)
    assert result.env_steps >= 160 and result.train_steps > 0
    policy_dir = os.path.join(result.root_dir, "policy")
    assert os.path.isfile(os.path.join(policy_dir, "saved_model.pb"))
    # The final score is one whole game of Pong with its true points: the exported policy,
    # replayed here on the same seed, plays until one side has 21, and its points sum to it.
    rewards = play_whole_game(SavedPolicy(policy_dir), "pong", config.run.seed + EVAL_SEED_OFFSET)
    assert set(np.unique(rewards)) <= {-1.0, 0.0, 1.0}
    assert max(np.sum(rewards == 1.0), np.sum(rewards == -1.0)) == 21
    assert result.final_eval_mean == rewards.sum()
    # No Pong game ends in 160 steps: the training return is unknown, not a score of 0.
    with open(os.path.join(result.root_dir, "metrics.csv"), newline="") as f:
        assert [row["train_return"] for row in csv.DictReader(f)] == ["", ""]
    # Resuming restores every saved value (FrameStoreReplay left out) and trains on.
    extended = train(config.replace(num_env_steps=240))
    assert extended.resumed_from_env_steps == result.env_steps
    assert extended.env_steps >= 240


def test_noop_pong_loses_every_point_of_a_whole_game():
    # A paddle that never moves misses every ball: the evaluation scores whole games -21.
    returns, lengths = run_atari_episodes(
        lambda obs: np.zeros(len(obs), np.int64), "pong", {}, num_episodes=2, seed=0
    )
    np.testing.assert_array_equal(returns, [-21.0, -21.0])
    assert np.all((lengths > 21 * 30) & (lengths < 21 * 45))  # about 36 agent steps a point


def test_c51_agent_trains_on_atari_frames(tiny_config):
    config = resolve_config(tiny_config(agent="c51", env="ALE/Pong-v5"))
    parts = build(config)
    # Stacked frames go to the frame-once replay: about one 84x84 frame per transition.
    assert isinstance(parts.loop.replay, FrameStoreReplay)
    assert parts.loop.replay.bytes_per_transition() < 8 * 1024
    assert isinstance(parts.agent, categorical_dqn_agent.CategoricalDqnAgent)
    parts.loop.prefill(32)
    assert int(parts.loop.replay.num_frames()) >= 32
    variables = [v.numpy().copy() for v in parts.agent._q_network.trainable_variables]
    loss = float(parts.loop.collect_train(tf.constant(2, tf.int64), tf.constant(2, tf.int64)))
    assert np.isfinite(loss)
    # Two iterations of two updates each, which changed the network.
    assert int(parts.agent.train_step_counter.numpy()) == 4
    after = parts.agent._q_network.trainable_variables
    assert any(not np.array_equal(b, a.numpy()) for b, a in zip(variables, after))


FULL_FRAMES = {"img_height": 210, "img_width": 160, "stack_num": 2}


# Screen rows of the field, between the walls; a paddle at the top or bottom reaches them.
FIELD_TOP, FIELD_BOTTOM = 34, 193


def agent_paddle_rows(frame: np.ndarray) -> tuple[int, int]:
    """First and last screen row of the agent's (right, green, gray 147) paddle on the field."""
    field = frame[FIELD_TOP : FIELD_BOTTOM + 1, 140:144]
    rows = np.flatnonzero((field == 147).any(axis=1)) + FIELD_TOP
    assert len(rows), "the agent's paddle is not on the field"
    return int(rows[0]), int(rows[-1])


def test_full_size_frames_are_the_emulators_own_grayscale_screen():
    import ale_py

    from tfa_suite.envs.atari_eval import make_vector_env

    # ale-py does not resample at the native 210x160: with frame skip 1 and no max-pool its
    # frames are ALE's own getScreenGrayscale(), pixel for pixel, through random play.
    env = make_vector_env(
        "pong",
        1,
        {
            "img_height": 210,
            "img_width": 160,
            "stack_num": 1,
            "noop_max": 0,
            "use_fire_reset": False,
        },
        frameskip=1,
        maxpool=False,
    )
    ale = ale_py.ALEInterface()
    ale.setLoggerMode(ale_py.LoggerMode.Error)
    ale.setFloat("repeat_action_probability", 0.0)
    ale.loadROM(ale_py.roms.get_rom_path("pong"))
    game_actions = ale.getMinimalActionSet()
    rng = np.random.default_rng(0)
    try:
        env.reset(seed=0)
        for _ in range(200):
            action = int(rng.integers(0, 6))
            obs, *_ = env.step(np.array([action]))
            ale.act(game_actions[action])
            np.testing.assert_array_equal(obs[0, 0], ale.getScreenGrayscale())
    finally:
        env.close()
    # So the field's background is one gray, and only the paddles and the ball differ;
    # at 84x84 ale-py interpolates, and edges blur into many grays.
    full = play(AtariEnvironment("pong", 1, seed=0, training=True, env_kwargs=FULL_FRAMES), 40)
    field = full[-1].observation[0, 35:194, :, -1]
    assert set(np.unique(field)) <= {87, 147, 148, 236}
    assert np.mean(field == 87) > 0.98
    small = play(AtariEnvironment("pong", 1, seed=0, training=True), 40)
    assert len(np.unique(small[-1].observation[0, ..., -1])) > 10


def test_full_size_observations_in_training_and_evaluation():
    env = AtariEnvironment("pong", num_envs=2, seed=0, training=True, env_kwargs=FULL_FRAMES)
    spec = env.observation_spec()
    assert spec.shape == (210, 160, 2) and spec.dtype == np.uint8
    steps = play(env, 10)
    env.close()
    for step in steps:
        assert step.observation.shape == (2, 210, 160, 2) and step.observation.dtype == np.uint8
    np.testing.assert_array_equal(steps[6].observation[..., 0], steps[5].observation[..., 1])
    # Evaluation (and so the exported policy's scores) sees the same observations.
    seen = set()

    def noop(obs: np.ndarray) -> np.ndarray:
        seen.add((obs.shape, obs.dtype))
        return np.zeros(len(obs), np.int64)

    kwargs = {**FULL_FRAMES, "max_num_frames_per_episode": 200}
    _, lengths = run_atari_episodes(noop, "pong", kwargs, num_episodes=2, seed=0)
    assert seen == {((2, 210, 160, 2), np.dtype(np.uint8))}
    assert np.all(lengths < 200 // 4 + 5)  # the frame cap ended both games early


def test_actions_map_agent_actions_to_game_actions():
    # Pong's minimal action set: 2 (RIGHT) moves the paddle up, 3 (LEFT) down.
    mapped = AtariEnvironment(
        "pong", 1, seed=0, training=True, env_kwargs={**FULL_FRAMES, "actions": [2, 3]}
    )
    plain = AtariEnvironment("pong", 1, seed=0, training=True, env_kwargs=FULL_FRAMES)
    spec = mapped.action_spec()
    assert (spec.dtype, int(spec.minimum), int(spec.maximum)) == (np.int64, 0, 1)
    assert int(plain.action_spec().maximum) == 5
    try:
        first = mapped.reset().observation
        np.testing.assert_array_equal(first, plain.reset().observation)
        start = agent_paddle_rows(first[0, ..., -1])
        assert 50 < start[0] and start[1] < 180  # mid-field, so it can move both ways
        rng = np.random.default_rng(0)
        agent_actions = [0] * 15 + [1] * 30 + list(rng.integers(0, 2, size=30))
        for i, action in enumerate(agent_actions):
            step = mapped.step(np.array([action]))
            # The emulator plays game action [2, 3][action]: the same game as the plain env.
            np.testing.assert_array_equal(
                step.observation, plain.step(np.array([[2, 3][action]])).observation
            )
            if i == 14:
                assert agent_paddle_rows(step.observation[0, ..., -1])[0] == FIELD_TOP  # at the top
            if i == 44:
                assert (
                    agent_paddle_rows(step.observation[0, ..., -1])[1] == FIELD_BOTTOM
                )  # at the bottom
        # Unmapped, action 0 is NOOP: the paddle stays where it is.
        still = plain.reset().observation
        for _ in range(15):
            still = plain.step(np.array([0])).observation
        assert agent_paddle_rows(still[0, ..., -1]) == start
    finally:
        mapped.close()
        plain.close()


def test_evaluation_and_video_play_the_mapped_actions(tmp_path):
    import imageio.v2 as imageio

    from tfa_suite.envs.atari_eval import record_atari_video

    kwargs = {**FULL_FRAMES, "actions": [2, 3], "max_num_frames_per_episode": 200}
    last = {}

    def up_and_down(obs: np.ndarray) -> np.ndarray:
        last["obs"] = obs
        return np.array([0, 1][: len(obs)])  # env 0 always up, env 1 always down

    run_atari_episodes(up_and_down, "pong", kwargs, num_episodes=2, seed=0)
    assert agent_paddle_rows(last["obs"][0, ..., -1])[0] == FIELD_TOP
    assert agent_paddle_rows(last["obs"][1, ..., -1])[1] == FIELD_BOTTOM
    # The video's colour emulator plays the mapped actions too: the paddle goes up there.
    path = str(tmp_path / "pong.mp4")
    _, lengths = record_atari_video(up_and_down, "pong", kwargs, path, num_episodes=1, seed=0)
    assert agent_paddle_rows(last["obs"][0, ..., -1])[0] == FIELD_TOP
    frames = imageio.mimread(path)
    assert len(frames) == lengths[0] and frames[-1].shape == (210, 160, 3)
    # The agent's green paddle (92, 186, 92) on the brown field (144, 72, 17), after
    # H.264's colour rounding: rows where column 141 is clearly green.
    column = frames[-1][34:194, 141].astype(int)
    green = np.flatnonzero((column[:, 1] > 150) & (column[:, 0] < 130)) + 34
    assert len(green) >= 3 and green.max() < 60


@pytest.mark.parametrize(
    "actions, message",
    [
        ("2,3", r'"actions" must be a list of the game\'s action numbers'),
        ([2, "3"], r'"actions" must be a list'),
        ([2.0, 3.0], r'"actions" must be a list'),
        ([True, False], r'"actions" must be a list'),
        ([], r'"actions" is empty'),
        ([2, 3, 2], r'"actions" \[2, 3, 2\] repeats \[2\]'),
        ([2, 6], r"\[6\] outside pong's action set, 0\.\.5"),
        ([-1, 2], r"\[-1\] outside pong's action set"),
    ],
)
def test_bad_actions_are_user_errors(actions, message):
    with pytest.raises(UserError, match=message) as error:
        AtariEnvironment("pong", 1, seed=0, training=True, env_kwargs={"actions": actions})
    assert "\n" not in str(error.value) and str(error.value).startswith("--env_kwargs")
    # Evaluation checks them the same way.
    with pytest.raises(UserError, match=message):
        run_atari_episodes(lambda obs: obs, "pong", {"actions": actions}, num_episodes=1, seed=0)


def test_actions_index_the_full_action_set_when_asked():
    env = AtariEnvironment(
        "pong", 1, seed=0, training=True, env_kwargs={"full_action_space": True, "actions": [17]}
    )
    assert int(env.action_spec().maximum) == 0
    env.close()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"stack_num": 0}, r'"stack_num" must be a positive integer, got 0'),
        ({"img_height": -5}, r'"img_height" must be a positive integer, got -5'),
        ({"img_width": "160"}, r'"img_width" must be a positive integer, got \'160\''),
        ({"stack_num": True}, r'"stack_num" must be a positive integer, got True'),
        ({"grayscale": False}, r"\['grayscale'\] are not options of an Atari game"),
    ],
)
def test_bad_image_options_are_user_errors(kwargs, message):
    # Checked before ale-py sees them: it hangs in reset on a stack or size of 0.
    with pytest.raises(UserError, match=message):
        AtariEnvironment("pong", 1, seed=0, training=True, env_kwargs=kwargs)
