"""`pong_diff`: Karpathy's Pong preprocessing as an in-graph layer, on real emulator frames."""

import tfa_suite  # noqa: F401  isort: skip

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.networks import actor_distribution_network
from tf_agents.specs import tensor_spec

from tfa_suite.agents.policy_gradient.preprocessing import (
    PONG_BACKGROUND_GRAYS,
    PongFrameDifference,
    observation_preprocessing,
)
from tfa_suite.envs.atari import AtariEnvironment
from tfa_suite.errors import UserError

FULL_FRAMES = {"img_height": 210, "img_width": 160, "stack_num": 2}
# Downsampled columns of the paddles: the opponent's at screen columns 16-19, the agent's
# at 140-143.
OPPONENT_COLUMNS, AGENT_COLUMNS = (8, 9), (70, 71)
# The field's gray, and the one of the frames right after a reset (measured below).
BACKGROUND, RESET_BACKGROUND = 87, 107


@pytest.fixture(scope="module")
def pong_steps():
    """Observations of 60 steps of two Pong games at full size, paddles moving at random."""
    env = AtariEnvironment(
        "pong", num_envs=2, seed=0, training=True, env_kwargs={**FULL_FRAMES, "actions": [2, 3]}
    )
    rng = np.random.default_rng(0)
    try:
        observations = [env.reset().observation]
        for _ in range(60):
            observations.append(env.step(rng.integers(0, 2, size=2)).observation)
    finally:
        env.close()
    return observations


def preprocess(frames: np.ndarray) -> np.ndarray:
    return PongFrameDifference()(tf.constant(frames)).numpy()


def objects(frames: np.ndarray) -> np.ndarray:
    """The binarized newest frame, [N, 80, 80]: its difference from an empty field."""
    empty = np.full_like(frames[..., 1], BACKGROUND)
    return preprocess(np.stack([empty, frames[..., 1]], axis=-1)).reshape(-1, 80, 80)


def test_the_background_grays_are_the_emulators_pg_pong_colours():
    import ale_py

    # pg-pong.py erases red channel 144 (the field, (144, 72, 17)) and 109 ((109, 118, 43),
    # the palette of the first frames after a reset); these are their grays in ALE.
    ale = ale_py.ALEInterface()
    ale.setLoggerMode(ale_py.LoggerMode.Error)
    ale.setFloat("repeat_action_probability", 0.0)
    ale.loadROM(ale_py.roms.get_rom_path("pong"))
    grays = {}
    for _ in range(40):
        rgb, gray = ale.getScreenRGB()[35:195], ale.getScreenGrayscale()[35:195]
        for red in (144, 109):
            if (rgb[..., 0] == red).any():
                grays.setdefault(red, set()).update(np.unique(gray[rgb[..., 0] == red]).tolist())
        ale.act(ale.getMinimalActionSet()[0])
    assert grays == {144: {BACKGROUND}, 109: {RESET_BACKGROUND}}
    assert sorted(PONG_BACKGROUND_GRAYS) == [BACKGROUND, RESET_BACKGROUND]


def test_real_frames_binarize_to_the_paddles_and_the_ball(pong_steps):
    out = preprocess(pong_steps[20])
    assert out.shape == (2, 6400) and out.dtype == np.float32
    seen_ball = False
    for observation in pong_steps[20:]:
        binary = objects(observation)
        assert set(np.unique(binary)) <= {0.0, 1.0}
        for frame in binary:
            # The background is erased: what is left is two paddles (8 rows of 2 columns
            # each, longer while one moves, as frames are max-pooled over two emulator
            # frames) and the ball (2 rows of 1 column, or two balls when max-pooled).
            assert 16 <= frame.sum() <= 60, frame.sum()
            # The agent's paddle is always there, if partly hidden at the top or bottom.
            assert frame[:, AGENT_COLUMNS].sum() >= 4
            rest = np.delete(frame, OPPONENT_COLUMNS + AGENT_COLUMNS, axis=1)
            assert rest.sum() <= 4  # the ball, if it is not level with a paddle
            seen_ball |= rest.sum() > 0
    assert seen_ball


def test_the_difference_shows_what_moved(pong_steps):
    frames = pong_steps[30]
    out = preprocess(frames)
    # Newest minus previous, exactly, on the binarized frames.
    previous = objects(np.stack([frames[..., 0], frames[..., 0]], axis=-1))
    newest = objects(frames)
    np.testing.assert_array_equal(out.reshape(-1, 80, 80), newest - previous)
    assert np.abs(out).sum() > 0  # the ball moves every step
    # Two identical frames: nothing moved.
    for observation in pong_steps[1:]:
        same = np.stack([observation[..., 1], observation[..., 1]], axis=-1)
        assert not preprocess(same).any()


def test_no_previous_frame_after_a_reset_gives_zeros(pong_steps):
    reset = pong_steps[0]
    # ale-py pads the stack with an all-zero frame after a reset; pg-pong.py's first input
    # of an episode is all zero, and so is the layer's, not "everything vanished".
    assert not reset[..., 0].any() and reset[..., 1].any()
    assert not preprocess(reset).any()
    assert objects(reset).sum() > 0  # the newest frame itself is not empty


def test_a_hand_made_pair_gives_plus_and_minus_one_where_expected():
    frames = np.full((1, 210, 160, 2), BACKGROUND, np.uint8)
    previous, newest = frames[0, ..., 0], frames[0, ..., 1]
    # The second background, erased too: the frame before the first step of a game without
    # no-ops (use_fire_reset, noop_max 0) has it, the next one the first background.
    previous[100:] = RESET_BACKGROUND
    previous[35 + 2 * 10, 2 * 20] = 236  # a ball at downsampled (10, 20) that left
    newest[35 + 2 * 30, 2 * 40] = 147  # a paddle pixel at (30, 40) that arrived
    newest[35 + 2 * 79, 2 * 79] = 148  # the last downsampled pixel, (79, 79)
    both = (35 + 2 * 50, 2 * 5)  # present in both frames: no change
    previous[both], newest[both] = 236, 236
    # Pixels that the crop and the every-other-pixel downsampling drop.
    newest[35 + 2 * 60 + 1, 2 * 60] = 236  # an odd row
    newest[35 + 2 * 60, 2 * 60 + 1] = 236  # an odd column
    newest[20, 50] = newest[194, 50] = newest[200, 50] = 236  # above and below the crop
    out = preprocess(frames)[0]
    expected = np.zeros(6400, np.float32)
    expected[10 * 80 + 20] = -1.0
    expected[30 * 80 + 40] = 1.0
    expected[79 * 80 + 79] = 1.0
    np.testing.assert_array_equal(out, expected)


def pg_pong_reference(frames: np.ndarray) -> np.ndarray:
    """pg-pong.py's prepro in NumPy on each frame, then newest - previous (zeros when the
    previous frame is ale-py's all-zero reset padding): [N, 6400] float32."""

    def prepro(image: np.ndarray) -> np.ndarray:
        small = image[35:195][::2, ::2]
        return (~np.isin(small, PONG_BACKGROUND_GRAYS)).astype(np.float32).ravel()

    out = []
    for frame in frames:
        previous, newest = frame[..., 0], frame[..., 1]
        has_previous = previous[35:195][::2, ::2].any()
        out.append((prepro(newest) - prepro(previous)) * has_previous)
    return np.stack(out)


def test_the_layer_gives_pg_pong_pys_values(pong_steps):
    # Real frames (a reset's zero padding included) and random bytes salted with both
    # background grays and zeros, so every branch of the rule is exercised.
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 256, size=(64, 210, 160, 2), dtype=np.uint8)
    salt = rng.choice(np.array([0, *PONG_BACKGROUND_GRAYS], np.uint8), size=noise.shape)
    noise = np.where(rng.random(noise.shape) < 0.5, salt, noise)
    noise[:4, ..., 0] = 0  # no previous frame
    for frames in (np.concatenate(pong_steps[:20]), noise):
        out = preprocess(frames)
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, pg_pong_reference(frames))


def test_the_layer_takes_any_outer_dims(pong_steps):
    frames = np.stack(pong_steps[10:13], axis=1)  # [2 envs, 3 steps, 210, 160, 2]
    out = preprocess(frames)
    assert out.shape == (2, 3, 6400)
    np.testing.assert_array_equal(out[:, 1], preprocess(pong_steps[11]))


def py_func_ops(fn, signature) -> list[str]:
    graph = tf.function(fn).get_concrete_function(signature).graph
    return [op.type for op in graph.get_operations() if "PyFunc" in op.type]


def test_the_layer_traces_into_a_graph_without_python_ops():
    signature = tf.TensorSpec([None, 210, 160, 2], tf.uint8)
    assert py_func_ops(PongFrameDifference(), signature) == []
    # The check sees a Python op when there is one.
    assert py_func_ops(lambda x: tf.py_function(np.sum, [x], tf.uint8), signature) != []


def test_actor_network_and_saved_model_with_the_layer(pong_steps, tmp_path):
    # The network the REINFORCE agent builds: the layer, one hidden layer of 200, 2 logits.
    # Full-shape bounds, as AtariEnvironment's (a uint8 scalar maximum + 1 overflows).
    shape = (210, 160, 2)
    observation_spec = tensor_spec.BoundedTensorSpec(
        shape, tf.uint8, np.zeros(shape, np.uint8), np.full(shape, 255, np.uint8)
    )
    action_spec = tensor_spec.BoundedTensorSpec((), tf.int64, 0, 1)
    layer = observation_preprocessing("pong_diff", observation_spec)
    assert isinstance(layer, PongFrameDifference) and not layer.built
    net = actor_distribution_network.ActorDistributionNetwork(
        observation_spec, action_spec, preprocessing_layers=layer, fc_layer_params=(200,)
    )
    net.create_variables()
    assert [tuple(v.shape) for v in net.trainable_variables if "kernel" in v.name][0] == (6400, 200)
    frames = tf.constant(pong_steps[30])
    logits = net(frames, step_type=None, network_state=())[0].logits
    assert logits.shape == (2, 2)

    module = tf.Module()
    module.net = net
    module.logits = tf.function(
        lambda x: net(x, step_type=None, network_state=())[0].logits,
        input_signature=[tf.TensorSpec([None, 210, 160, 2], tf.uint8)],
    )
    tf.saved_model.save(module, str(tmp_path))
    loaded = tf.saved_model.load(str(tmp_path))
    np.testing.assert_allclose(loaded.logits(frames).numpy(), logits.numpy(), rtol=1e-5)
    graph = loaded.logits.get_concrete_function().graph
    assert not [op for op in graph.get_operations() if "PyFunc" in op.type]


def test_no_preprocessing_by_default():
    spec = tensor_spec.TensorSpec((84, 84, 4), tf.uint8)
    assert observation_preprocessing("", spec) is None


@pytest.mark.parametrize(
    "spec, got",
    [
        (tensor_spec.TensorSpec((84, 84, 4), tf.uint8), "uint8 [84, 84, 4]"),
        (tensor_spec.TensorSpec((210, 160, 4), tf.uint8), "uint8 [210, 160, 4]"),
        (tensor_spec.TensorSpec((210, 160, 2), tf.float32), "float32 [210, 160, 2]"),
        ({"a": tensor_spec.TensorSpec((210, 160, 2), tf.uint8)}, "a nest of 1 observations"),
    ],
)
def test_pong_diff_refuses_other_observations(spec, got):
    with pytest.raises(UserError) as error:
        observation_preprocessing("pong_diff", spec)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("--observation_preprocessing=pong_diff needs uint8 [210, 160, 2]")
    assert "img_height 210, img_width 160, stack_num 2" in message and message.endswith(got)


def test_pong_diff_takes_the_numpy_spec_of_the_env():
    env = AtariEnvironment("pong", num_envs=1, seed=0, training=True, env_kwargs=FULL_FRAMES)
    try:
        assert isinstance(
            observation_preprocessing("pong_diff", env.observation_spec()), tf.keras.layers.Layer
        )
    finally:
        env.close()


def test_unknown_preprocessing_is_a_user_error():
    with pytest.raises(
        UserError, match=r"^--observation_preprocessing=pong is not known; .*pong_diff"
    ):
        observation_preprocessing("pong", tensor_spec.TensorSpec((210, 160, 2), tf.uint8))


def test_the_layer_refuses_other_frame_shapes():
    with pytest.raises(ValueError, match=r"210, 160, 2"):
        PongFrameDifference()(tf.zeros([1, 84, 84, 4], tf.uint8))
