"""FrameStoreReplay: frames stored once, stacks rebuilt exactly as the environment made them."""

import tfa_suite  # noqa: F401  isort: skip

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.agents.dqn import dqn_agent
from tf_agents.drivers import dynamic_step_driver
from tf_agents.environments import batched_py_environment, py_environment, tf_py_environment
from tf_agents.networks import q_network
from tf_agents.replay_buffers import tf_uniform_replay_buffer
from tf_agents.specs import array_spec, tensor_spec
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory

from tfa_suite.loops.graph_checks import find_host_round_trips
from tfa_suite.replay import FrameStoreReplay

K = 4
FRAME = (8, 6)
NUM_ACTIONS = 3
FIRST, MID, LAST = (int(s) for s in (ts.StepType.FIRST, ts.StepType.MID, ts.StepType.LAST))


class StackedFramesEnv(py_environment.PyEnvironment):
    """Episodes of 1..max_len env steps whose frames encode (env id, episode, step).

    Pixel [0, 0] is env id + 1, [0, 1] episode + 1, [0, 2] step + 1 (all non-zero, so a
    zero padding slot is never mistaken for a frame); the rest is a pattern of all three.
    Stacks are padded after a reset like ale-py ("zeros") or with the first frame
    ("first"). Like ale-py's NextStep autoreset, the step after a LAST step ignores its
    action and returns the new episode's first observation.
    """

    def __init__(self, env_id: int, padding: str = "zeros", max_len: int = 6, seed: int = 0):
        super().__init__()
        self._env_id = env_id
        self._padding = padding
        self._max_len = max_len
        self._rng = np.random.default_rng([seed, env_id])
        self._episode = -1
        self._done = False

    def observation_spec(self):
        # Full-shape bounds: TF-Agents samples the spec to build networks and a numpy-2
        # uint8 scalar maximum overflows there (255 + 1 == 0).
        shape = (*FRAME, K)
        return array_spec.BoundedArraySpec(
            shape, np.uint8, np.zeros(shape, np.uint8), np.full(shape, 255, np.uint8)
        )

    def action_spec(self):
        return array_spec.BoundedArraySpec((), np.int64, 0, NUM_ACTIONS - 1, name="action")

    def _frame(self) -> np.ndarray:
        pattern = (
            self._env_id * 37 + self._episode * 11 + self._t * 5 + np.arange(FRAME[0] * FRAME[1])
        )
        frame = (pattern % 250 + 1).astype(np.uint8).reshape(FRAME)
        frame[0, :3] = (self._env_id + 1, self._episode % 250 + 1, self._t + 1)
        return frame

    def _observation(self) -> np.ndarray:
        return np.stack(self._stack, axis=-1)

    def _reset(self):
        self._episode += 1
        self._t = 0
        self._length = int(self._rng.integers(1, self._max_len + 1))
        self._terminal = bool(self._rng.random() < 0.5)
        self._done = False
        first = self._frame()
        pad = np.zeros_like(first) if self._padding == "zeros" else first
        self._stack = [pad] * (K - 1) + [first]
        return ts.restart(self._observation())

    def _step(self, action):
        if self._done:
            return self._reset()
        self._t += 1
        self._stack = self._stack[1:] + [self._frame()]
        reward = np.float32(self._env_id * 1000 + self._episode % 50 * 10 + self._t + 0.25 * action)
        if self._t == self._length:
            self._done = True
            if self._terminal:
                return ts.termination(self._observation(), reward)
            return ts.truncation(self._observation(), reward)
        return ts.transition(self._observation(), reward)


def batched_env(num_envs: int, padding: str = "zeros", seed: int = 0):
    envs = [StackedFramesEnv(i, padding, seed=seed) for i in range(num_envs)]
    return batched_py_environment.BatchedPyEnvironment(envs, multithreading=False)


def collect(env, num_items: int, seed: int = 0):
    """Yields batched numpy Trajectories as a TF-Agents driver builds them."""
    rng = np.random.default_rng(seed)
    current = env.reset()
    for _ in range(num_items):
        action = rng.integers(0, NUM_ACTIONS, size=env.batch_size).astype(np.int64)
        following = env.step(action)
        yield trajectory.Trajectory(
            step_type=current.step_type,
            observation=current.observation,
            action=action,
            policy_info=(),
            next_step_type=following.step_type,
            reward=following.reward,
            discount=following.discount,
        )
        current = following


def data_spec_for(env) -> trajectory.Trajectory:
    time_step_spec = tensor_spec.from_spec(env.time_step_spec())
    return trajectory.Trajectory(
        step_type=time_step_spec.step_type,
        observation=time_step_spec.observation,
        action=tensor_spec.from_spec(env.action_spec()),
        policy_info=(),
        next_step_type=time_step_spec.step_type,
        reward=time_step_spec.reward,
        discount=time_step_spec.discount,
    )


class Reference:
    """Everything added, indexed [id, env], to check samples against."""

    def __init__(self):
        self.items = []

    def add(self, item):
        self.items.append(item)

    def field(self, name: str) -> np.ndarray:
        return np.stack([np.asarray(getattr(item, name)) for item in self.items])


FIELDS = ("step_type", "observation", "action", "next_step_type", "reward", "discount")


def check_against_reference(experience, info, ref: Reference, max_length: int, num_steps: int):
    """Sampled windows are valid, consecutive, and equal to what was added, field by field."""
    ids, env_ids = info.ids.numpy(), info.env_ids.numpy()
    count = len(ref.items)
    assert ids.shape == (len(env_ids), num_steps)
    np.testing.assert_array_equal(
        ids - ids[:, :1], np.broadcast_to(np.arange(num_steps), ids.shape)
    )
    assert ids.min() >= max(0, count - max_length), "sampled an overwritten item"
    assert ids.max() <= count - 1
    for name in FIELDS:
        got = getattr(experience, name).numpy()
        expected = ref.field(name)[ids, env_ids[:, None]]
        assert got.dtype == expected.dtype, name
        np.testing.assert_array_equal(got, expected, err_msg=name)


def check_no_leaks(observation: np.ndarray, padding: str) -> None:
    """Every stack holds only its own episode's frames, in order, then padding."""
    stacks = observation.reshape(-1, *FRAME, K)
    for stack in stacks:
        env, episode, step = (int(v) - 1 for v in stack[0, :3, K - 1])
        for slot in range(K - 1):
            lag = K - 1 - slot
            frame = stack[..., slot]
            if lag <= step:
                expected = (env + 1, episode + 1, step - lag + 1)
            elif padding == "zeros":
                assert not frame.any(), "padding slot holds a frame"
                continue
            else:
                expected = (env + 1, episode + 1, 1)
            assert tuple(int(v) for v in frame[0, :3]) == expected


@pytest.mark.parametrize(
    "padding, layout", [("zeros", "packed"), ("zeros", "planes"), ("first", "planes")]
)
def test_synthetic_stacks_equal_env_stacks_across_wraps(padding, layout):
    num_envs, max_length, num_steps = 3, 19, 3
    env = batched_env(num_envs, padding)
    replay = FrameStoreReplay(
        data_spec_for(env), num_envs, max_length, K, reset_padding=padding, layout=layout
    )
    assert replay.layout == layout
    sample = tf.function(lambda: replay.get_next(sample_batch_size=64, num_steps=num_steps))
    ref = Reference()
    straddling = one_step_episodes = 0
    for item in collect(env, 150):
        replay.add_batch(tf.nest.map_structure(tf.convert_to_tensor, item))
        ref.add(item)
        count = len(ref.items)
        assert int(replay.num_frames()) == min(count, max_length) * num_envs
        if count >= num_steps and count % 10 == 0:
            experience, info = sample()
            check_against_reference(experience, info, ref, max_length, num_steps)
            check_no_leaks(experience.observation.numpy(), padding)
            step_type = experience.step_type.numpy()
            straddling += int((step_type[:, 1:] == FIRST).sum())
            one_step_episodes += int(
                ((step_type == FIRST) & (experience.next_step_type.numpy() == LAST)).sum()
            )
    # The windows really crossed LAST -> FIRST boundaries, incl. one-step episodes.
    assert straddling > 50 and one_step_episodes > 10


def test_boundary_stacks_start_clean():
    """In windows straddling LAST -> FIRST, the new episode's stacks have no old frames."""
    env = batched_env(2, "zeros", seed=3)
    replay = FrameStoreReplay(data_spec_for(env), 2, 64, K)
    ref = Reference()
    for item in collect(env, 60, seed=3):
        replay.add_batch(item)
        ref.add(item)
    experience, info = replay.get_next(sample_batch_size=512, num_steps=2)
    check_against_reference(experience, info, ref, 64, 2)
    step_type = experience.step_type.numpy()
    obs = experience.observation.numpy()
    boundary = (step_type[:, 0] == LAST) & (step_type[:, 1] == FIRST)
    assert boundary.sum() > 20
    new_episode = obs[boundary, 1]  # [n, H, W, K]
    assert not new_episode[..., : K - 1].any()
    episode_of = lambda stacks: stacks[:, 0, 1, K - 1]  # noqa: E731
    assert (episode_of(new_episode) == episode_of(obs[boundary, 0]) + 1).all()
    # Second item of a new episode: exactly one older frame, from the same episode.
    second = (step_type[:, 0] == FIRST) & (step_type[:, 1] != FIRST)
    stacks = obs[second, 1]
    assert second.sum() > 10 and not stacks[..., : K - 2].any()
    np.testing.assert_array_equal(stacks[..., K - 2], obs[second, 0][..., K - 1])


@pytest.mark.parametrize(
    "layout, max_length", [("packed", 5), ("packed", 7), ("packed", 8), ("planes", 8)]
)
def test_wraparound_samples_exactly_the_retained_windows(layout, max_length):
    num_envs, count = 2, 50
    env = batched_env(num_envs, "zeros", seed=5)
    replay = FrameStoreReplay(data_spec_for(env), num_envs, max_length, K, seed=1, layout=layout)
    ref = Reference()
    for item in collect(env, count, seed=5):
        replay.add_batch(item)
        ref.add(item)
    experience, info = replay.get_next(sample_batch_size=2000, num_steps=2)
    check_against_reference(experience, info, ref, max_length, 2)
    check_no_leaks(experience.observation.numpy(), "zeros")
    windows = set(zip(info.env_ids.numpy().tolist(), info.ids.numpy()[:, 0].tolist()))
    expected = {(e, s) for e in range(num_envs) for s in range(count - max_length, count - 1)}
    assert windows == expected
    np.testing.assert_allclose(info.probabilities.numpy(), 1 / len(expected))
    assert int(replay.num_frames()) == num_envs * max_length
    # Single items (num_steps=None), unbatched samples and time_stacked=False, like TF-Agents.
    single, single_info = replay.get_next(sample_batch_size=16)
    assert single.observation.shape == (16, *FRAME, K) and single_info.ids.shape == (16,)
    one, _ = replay.get_next(num_steps=3)
    assert one.observation.shape == (3, *FRAME, K) and one.reward.shape == (3,)
    steps, _ = replay.get_next(sample_batch_size=5, num_steps=3, time_stacked=False)
    assert len(steps) == 3 and steps[0].observation.shape == (5, *FRAME, K)


def test_nested_policy_info_and_errors():
    env = batched_env(2)
    spec = data_spec_for(env)._replace(
        policy_info={
            "q": tf.TensorSpec([NUM_ACTIONS], tf.float32),
            "n": tf.TensorSpec([], tf.int32),
        }
    )
    replay = FrameStoreReplay(spec, 2, 10, K)
    with pytest.raises(tf.errors.InvalidArgumentError):
        replay.get_next(sample_batch_size=4, num_steps=2)
    infos = []
    for t, item in enumerate(collect(env, 4)):
        info = {
            "q": np.full([2, NUM_ACTIONS], t + 0.5, np.float32),
            "n": np.array([t, -t], np.int32),
        }
        infos.append(info)
        replay.add_batch(item._replace(policy_info=info))
    experience, sample_info = replay.get_next(sample_batch_size=32, num_steps=2)
    ids, envs = sample_info.ids.numpy(), sample_info.env_ids.numpy()
    np.testing.assert_array_equal(experience.policy_info["q"].numpy()[..., 0], ids + 0.5)
    np.testing.assert_array_equal(
        experience.policy_info["n"].numpy(), ids * (1 - 2 * envs[:, None])
    )
    with pytest.raises(ValueError):
        replay.get_next(sample_batch_size=4, num_steps=11)
    with pytest.raises(ValueError):
        FrameStoreReplay(spec, 2, 10, stack=3)
    with pytest.raises(ValueError):
        FrameStoreReplay(spec, 2, 10, K, reset_padding="noop")
    with pytest.raises(ValueError):
        FrameStoreReplay(spec, 2, 10, K, reset_padding="first", layout="packed")
    # "auto" packs uint8 stacks of 4 with zero padding, and falls back to planes otherwise.
    assert FrameStoreReplay(spec, 2, 10, K).layout == "packed"
    assert FrameStoreReplay(spec, 2, 10, K, reset_padding="first").layout == "planes"


def test_layouts_give_identical_samples():
    """Packed words and plain frame planes rebuild the same stacks (and K=3 works)."""
    env = batched_env(3, seed=11)
    spec = data_spec_for(env)
    packed = FrameStoreReplay(spec, 3, 13, K, seed=4, layout="packed")
    planes = FrameStoreReplay(spec, 3, 13, K, seed=4, layout="planes")
    obs3 = tf.TensorSpec([*FRAME, 3], tf.uint8)
    three = FrameStoreReplay(spec._replace(observation=obs3), 3, 13, 3, seed=4)
    assert three.layout == "planes"
    for count, item in enumerate(collect(env, 45, seed=11), start=1):
        packed.add_batch(item)
        planes.add_batch(item)
        three.add_batch(item._replace(observation=item.observation[..., 1:]))
        if count >= 4 and count % 3 == 0:
            a = packed.get_next(sample_batch_size=64, num_steps=4)
            b = planes.get_next(sample_batch_size=64, num_steps=4)
            tf.nest.map_structure(np.testing.assert_array_equal, a, b)
            c, _ = three.get_next(sample_batch_size=64, num_steps=4)
            np.testing.assert_array_equal(c.observation, a[0].observation[..., 1:])


def test_driver_observer_and_dqn_train_in_tf_function():
    num_envs, n_step = 2, 2
    tf_env = tf_py_environment.TFPyEnvironment(batched_env(num_envs, seed=7))
    q_net = q_network.QNetwork(
        tf_env.observation_spec(),
        tf_env.action_spec(),
        preprocessing_layers=tf.keras.layers.Lambda(lambda x: tf.cast(x, tf.float32) / 255.0),
        conv_layer_params=((4, 3, 1),),
        fc_layer_params=(16,),
    )
    agent = dqn_agent.DqnAgent(
        tf_env.time_step_spec(),
        tf_env.action_spec(),
        q_network=q_net,
        optimizer=tf.keras.optimizers.Adam(1e-3),
        epsilon_greedy=0.5,
        n_step_update=n_step,
    )
    agent.initialize()
    replay = FrameStoreReplay(agent.collect_data_spec, num_envs, 24, K)
    # Large enough never to wrap: the stacked-observation reference of everything added.
    reference = tf_uniform_replay_buffer.TFUniformReplayBuffer(
        agent.collect_data_spec, batch_size=num_envs, max_length=100
    )
    driver = dynamic_step_driver.DynamicStepDriver(
        tf_env, agent.collect_policy, observers=[replay.add_batch, reference.add_batch], num_steps=8
    )
    collect_fn = tf.function(driver.run, autograph=False)
    time_step, policy_state = None, None
    for _ in range(7):  # 28 items per env: the frame store has wrapped
        time_step, policy_state = collect_fn(time_step, policy_state)

    @tf.function(autograph=False)
    def sample_and_train():
        experience, info = replay.get_next(sample_batch_size=16, num_steps=n_step + 1)
        return experience, info, agent.train(experience).loss

    experience, info, loss = sample_and_train()
    assert np.isfinite(loss.numpy())
    everything = reference.gather_all()  # [env, id, ...]
    ids, env_ids = info.ids.numpy(), info.env_ids.numpy()
    assert ids.min() >= 28 - 24
    for name in FIELDS:
        expected = getattr(everything, name).numpy()[env_ids[:, None], ids]
        np.testing.assert_array_equal(getattr(experience, name).numpy(), expected, err_msg=name)
    check_no_leaks(experience.observation.numpy(), "zeros")

    # The buffer's own ops never call back into Python.
    batched = tf.nest.map_structure(
        lambda s: tf.TensorSpec([num_envs, *s.shape], s.dtype), agent.collect_data_spec
    )

    def add_and_sample(items):
        replay.add_batch(items)
        return replay.get_next(sample_batch_size=4, num_steps=2)

    concrete = tf.function(add_and_sample, autograph=False).get_concrete_function(batched)
    assert find_host_round_trips(concrete) == []


def test_checkpoint_round_trip_reproduces_samples(tmp_path):
    env = batched_env(2, seed=9)
    spec = data_spec_for(env)
    items = list(collect(env, 40, seed=9))
    replay = FrameStoreReplay(spec, 2, 16, K, seed=123)
    for item in items[:30]:
        replay.add_batch(item)
    path = tf.train.Checkpoint(replay=replay).save(str(tmp_path / "ckpt"))
    restored = FrameStoreReplay(spec, 2, 16, K, seed=999)
    tf.train.Checkpoint(replay=restored).restore(path).assert_consumed()

    def same_samples():
        for _ in range(2):
            a, a_info = replay.get_next(sample_batch_size=32, num_steps=3)
            b, b_info = restored.get_next(sample_batch_size=32, num_steps=3)
            tf.nest.map_structure(np.testing.assert_array_equal, (a, a_info), (b, b_info))

    same_samples()
    # Write positions and episode bookkeeping came back too: both continue identically.
    for item in items[30:]:
        replay.add_batch(item)
        restored.add_batch(item)
    same_samples()
    assert int(restored.num_frames()) == 32


@pytest.mark.parametrize("layout", ["packed", "planes"])
def test_bytes_per_transition_84x84(layout):
    obs = tensor_spec.BoundedTensorSpec([84, 84, 4], tf.uint8, 0, 255)
    step_spec = ts.time_step_spec(obs)
    spec = trajectory.Trajectory(
        step_type=step_spec.step_type,
        observation=obs,
        action=tensor_spec.BoundedTensorSpec([], tf.int64, 0, 5),
        policy_info=(),
        next_step_type=step_spec.step_type,
        reward=step_spec.reward,
        discount=step_spec.discount,
    )
    replay = FrameStoreReplay(spec, batch_size=4, max_length=250, stack=4, layout=layout)
    per_transition = replay.bytes_per_transition()
    assert 84 * 84 < per_transition <= 8 * 1024
    stacked = tf_uniform_replay_buffer.TFUniformReplayBuffer(spec, batch_size=4, max_length=250)
    stacked_bytes = sum(v.shape.num_elements() * v.dtype.size for v in stacked.variables())
    assert stacked_bytes / stacked.capacity > 28_000
    assert per_transition < stacked_bytes / stacked.capacity / 3.8


def test_ale_vector_env_stacks():
    """Real Atari stacks (ale-py, NextStep autoreset) come back exactly."""
    from ale_py.vector_env import AtariVectorEnv

    num_envs, max_length, num_steps = 2, 40, 3
    env = AtariVectorEnv(
        "pong",
        num_envs=num_envs,
        stack_num=K,
        img_height=84,
        img_width=84,
        grayscale=True,
        frameskip=4,
        maxpool=True,
        noop_max=30,
        autoreset_mode="NextStep",
        max_num_frames_per_episode=100,  # truncates every ~25 agent steps: many boundaries
    )
    try:
        rng = np.random.default_rng(0)
        obs, _ = env.reset(seed=0)
        # ale-py's layout is [env, K, H, W], newest frame last; slots older than the
        # episode's first frame are zeros.
        assert obs.shape == (num_envs, K, 84, 84) and obs.dtype == np.uint8
        assert not obs[:, : K - 1].any() and obs[:, K - 1].any(axis=(1, 2)).all()
        obs_spec = tf.TensorSpec([84, 84, K], tf.uint8)
        step_spec = ts.time_step_spec(obs_spec)
        spec = trajectory.Trajectory(
            step_type=step_spec.step_type,
            observation=obs_spec,
            action=tf.TensorSpec([], tf.int64),
            policy_info=(),
            next_step_type=step_spec.step_type,
            reward=step_spec.reward,
            discount=step_spec.discount,
        )
        replay = FrameStoreReplay(spec, num_envs, max_length, K)
        assert replay.layout == "packed"
        sample = tf.function(lambda: replay.get_next(sample_batch_size=32, num_steps=num_steps))
        ref = Reference()
        step_type = np.full(num_envs, FIRST, np.int32)
        boundaries = straddling = 0
        for t in range(240):
            action = rng.integers(0, env.single_action_space.n, size=num_envs)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            restarted = step_type == LAST
            next_type = np.where(
                restarted, FIRST, np.where(terminated | truncated, LAST, MID)
            ).astype(np.int32)
            if restarted.any():  # the new episode's stack: zeros, then its first frame
                assert not next_obs[restarted, : K - 1].any()
                boundaries += int(restarted.sum())
            else:  # within an episode the stack shifts by one frame
                np.testing.assert_array_equal(next_obs[:, : K - 1], obs[:, 1:])
            item = trajectory.Trajectory(
                step_type=step_type,
                observation=np.transpose(obs, (0, 2, 3, 1)),  # channels last, newest last
                action=action.astype(np.int64),
                policy_info=(),
                next_step_type=next_type,
                reward=np.where(restarted, 0.0, reward).astype(np.float32),
                discount=np.where(terminated & ~restarted, 0.0, 1.0).astype(np.float32),
            )
            replay.add_batch(item)
            ref.add(item)
            obs, step_type = next_obs, next_type
            if t % 40 == 39:
                experience, info = sample()
                check_against_reference(experience, info, ref, max_length, num_steps)
                straddling += int((experience.step_type.numpy()[:, 1:] == FIRST).sum())
        assert boundaries >= 2 * num_envs and straddling > 0
    finally:
        env.close()
