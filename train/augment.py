"""Augmentation that makes MNIST look like canvas drawings: small affine jitter and stroke thickness."""

from __future__ import annotations

import math
from dataclasses import dataclass

import tensorflow as tf


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random distortions applied to each training image."""

    rotation_deg: float = 10.0  # people tilt digits; more than ~15 degrees starts turning 6 into 9
    scale: float = 0.10  # preprocessing fixes the size, so only the leftover jitter is needed
    shear: float = 0.15  # slanted handwriting
    shift_px: float = 2.0  # centre-of-mass centring is imperfect for thin, asymmetric strokes
    thicken: float = 0.8  # blend towards a 3x3 dilation: a canvas brush is thicker than MNIST's pen
    thin: float = 0.4  # blend towards a 3x3 erosion; more erases thin digits altogether


def _affine(batch: tf.Tensor, cfg: AugmentConfig, seed: tf.Tensor) -> tf.Tensor:
    n = tf.shape(batch)[0]
    seeds = tf.random.experimental.stateless_split(seed, 5)
    angle = tf.random.stateless_uniform([n], seeds[0], -1.0, 1.0) * (cfg.rotation_deg * math.pi / 180)
    scale = 1.0 + tf.random.stateless_uniform([n], seeds[1], -cfg.scale, cfg.scale)
    shear = tf.random.stateless_uniform([n], seeds[2], -cfg.shear, cfg.shear)
    shift = tf.random.stateless_uniform([n, 2], seeds[3], -cfg.shift_px, cfg.shift_px)
    # Inverse map (output pixel -> input pixel) about the image centre, as ImageProjectiveTransform wants.
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    a0, a1 = cos, -sin + shear * cos
    b0, b1 = sin, cos + shear * sin
    c = 13.5
    a2 = c - a0 * c - a1 * c + shift[:, 0]
    b2 = c - b0 * c - b1 * c + shift[:, 1]
    zeros = tf.zeros_like(a0)
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=batch,
        transforms=transforms,
        output_shape=tf.constant([28, 28]),
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )


def _stroke(batch: tf.Tensor, cfg: AugmentConfig, seed: tf.Tensor) -> tf.Tensor:
    n = tf.shape(batch)[0]
    amount = tf.random.stateless_uniform([n, 1, 1, 1], seed, -cfg.thin, cfg.thicken)
    dilated = tf.nn.max_pool2d(batch, 3, 1, "SAME")
    eroded = -tf.nn.max_pool2d(-batch, 3, 1, "SAME")
    target = tf.where(amount > 0, dilated, eroded)
    return batch + tf.abs(amount) * (target - batch)


def augment(batch: tf.Tensor, seed: tf.Tensor, cfg: AugmentConfig = AugmentConfig()) -> tf.Tensor:
    """Distort a float32 N x 28 x 28 x 1 batch in [0, 1]; `seed` is a stateless [2] int seed."""
    affine_seed, stroke_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    out = _stroke(_affine(batch, cfg, affine_seed), cfg, stroke_seed)
    return tf.clip_by_value(out, 0.0, 1.0)
