"""In-graph observation preprocessing for the policy networks, chosen by name.

`--observation_preprocessing` names one. The agent hands the layer to TF-Agents' networks
as `preprocessing_layers`, so it runs inside the compiled collect and train steps and
inside the exported SavedModel policy: evaluation, `experiments/evaluate.py` and the
video feed raw env observations and get the same preprocessing, with no Python in between.

`pong_diff` is the preprocessing of Karpathy's "Pong from Pixels" (2016, pg-pong.py) on
the emulator's own frames (`--env_kwargs` img_height 210, img_width 160, stack_num 2):
crop the play field, keep every other row and column (80x80), erase the background, set
everything else to 1, and feed the difference of the newest and the previous frame, so a
fully connected policy sees where the ball and paddles are and which way they move.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from tfa_suite.errors import UserError

# Names `--observation_preprocessing` accepts; "" is none (the network sees raw observations).
OBSERVATION_PREPROCESSING = ("", "pong_diff")

PONG_FRAME_SHAPE = (210, 160, 2)  # the emulator's screen, two frames, newest last
# pg-pong.py's crop I[35:195]: below the score and the top wall, down to the bottom wall.
# Its first row, 194, is skipped by the downsampling, so no wall pixel survives.
PONG_CROP_ROWS = (35, 195)
PONG_DOWNSAMPLE = 2  # pg-pong.py's I[::2, ::2]: every other pixel, no averaging
PONG_OUTPUT_SIZE = 80 * 80
# The background grays, measured on ale-py 0.12.1's Pong ROM with one ALEInterface and
# both getScreenRGB() and getScreenGrayscale() of the same frames, over a whole game of
# random play and the frames right after reset_game(): every pixel of the field's brown
# (144, 72, 17), pg-pong.py's "background type 1" (red channel 144), is gray 87. The
# first two frames after a reset use another palette whose background (109, 118, 43),
# pg-pong.py's "type 2" (red channel 109), is gray 107. Nothing else in the crop has
# either value: the paddles are 147 (the agent's, green, right) and 148 (the opponent's),
# the ball 236, and in the reset palette the paddle 121 and the walls 74.
PONG_BACKGROUND_GRAYS = (87, 107)


class PongFrameDifference(tf.keras.layers.Layer):
    """uint8 [..., 210, 160, 2] Pong frames -> float32 [..., 6400], newest minus previous.

    Each frame is cropped to rows 35:195, downsampled to 80x80 by keeping every other
    pixel, and binarized: the two background grays become 0, everything else (paddles,
    ball) 1. The output is newest - previous, flattened row by row, so a pixel is +1 where
    something arrived, -1 where it left and 0 elsewhere.

    After a reset ale-py pads the stack with an all-zero frame; with no previous frame the
    output is all zero, as pg-pong.py's first input of every episode. No real frame is
    zero inside the crop (its background is 87 or 107).

    Pure TensorFlow ops with no weights, so it traces into any graph and SavedModel.
    """

    def build(self, input_shape: Any) -> None:
        shape = tf.TensorShape(input_shape)
        if shape.rank is None or tuple(shape[-3:].as_list()) != PONG_FRAME_SHAPE:
            raise ValueError(
                f"PongFrameDifference needs [..., 210, 160, 2] frames, got {shape.as_list()}"
            )
        super().build(input_shape)

    def call(self, frames: tf.Tensor) -> tf.Tensor:
        # Written for speed on a training batch (16,384 frames of pong_pg.cfg's rollout):
        # the row crop is one contiguous slice, every other row and column is taken by
        # reshaping and slicing whole rows rather than by one doubly strided slice, and
        # the arithmetic stays in int8 until the single cast of the output. The first
        # version (strided slice, float32 objects) took 2.7x as long for the same values.
        top, bottom = PONG_CROP_ROWS
        height, width = (bottom - top) // PONG_DOWNSAMPLE, PONG_FRAME_SHAPE[1] // PONG_DOWNSAMPLE
        outer = tf.shape(frames)[:-3]
        crop = tf.reshape(frames, [-1, *PONG_FRAME_SHAPE])[:, top:bottom]  # [n, 160, 160, 2]
        rows = tf.reshape(crop, [-1, height, PONG_DOWNSAMPLE, PONG_FRAME_SHAPE[1], 2])[:, :, 0]
        small = tf.reshape(rows, [-1, height, width, PONG_DOWNSAMPLE, 2])[:, :, :, 0]
        objects = tf.ones_like(small, dtype=tf.bool)  # [n, 80, 80, 2]
        for gray in PONG_BACKGROUND_GRAYS:
            objects = tf.logical_and(objects, tf.not_equal(small, tf.cast(gray, small.dtype)))
        objects = tf.cast(objects, tf.int8)
        difference = objects[..., 1] - objects[..., 0]  # [n, 80, 80]
        # ale-py's zero padding after a reset: there is no previous frame to subtract.
        has_previous = tf.reduce_any(tf.not_equal(small[..., 0], 0), axis=[-2, -1], keepdims=True)
        difference = difference * tf.cast(has_previous, tf.int8)
        flat = tf.reshape(difference, tf.concat([outer, [PONG_OUTPUT_SIZE]], axis=0))
        flat = tf.cast(flat, tf.float32)
        flat.set_shape(frames.shape[:-3].concatenate([PONG_OUTPUT_SIZE]))
        return flat

    def compute_output_shape(self, input_shape: Any) -> tf.TensorShape:
        return tf.TensorShape(input_shape)[:-3].concatenate([PONG_OUTPUT_SIZE])


def _describe(spec: Any) -> str:
    if tf.nest.is_nested(spec):
        return f"a nest of {len(tf.nest.flatten(spec))} observations"
    shape = tf.TensorShape(spec.shape).as_list()
    return f"{tf.as_dtype(spec.dtype).name} {shape}"


def observation_preprocessing(name: str, observation_spec: Any) -> tf.keras.layers.Layer | None:
    """A new, unbuilt preprocessing layer named by `--observation_preprocessing`, or None.

    `observation_spec` is the env's (TF or numpy) observation spec; an observation the
    layer cannot take is refused here, in one line that says which `--env_kwargs` give it.
    TF-Agents' networks copy the layer from its config, so it must not be built yet.
    """
    if name == "":
        return None
    if name == "pong_diff":
        fits = (
            not tf.nest.is_nested(observation_spec)
            and tf.as_dtype(observation_spec.dtype) == tf.uint8
            and tuple(tf.TensorShape(observation_spec.shape).as_list()) == PONG_FRAME_SHAPE
        )
        if not fits:
            raise UserError(
                "--observation_preprocessing=pong_diff needs uint8 [210, 160, 2] observations "
                "(--env_kwargs img_height 210, img_width 160, stack_num 2), got "
                f"{_describe(observation_spec)}"
            )
        return PongFrameDifference(name="pong_frame_difference")
    known = ", ".join(repr(n) if n == "" else n for n in OBSERVATION_PREPROCESSING)
    raise UserError(f"--observation_preprocessing={name} is not known; choose one of {known}")
