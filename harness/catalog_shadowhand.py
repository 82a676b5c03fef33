"""BRC's ShadowHand object-rotation tasks for the catalog: the objects and BRC's train/test split.

Plain data, imported by :mod:`harness.catalog`; loads no simulator.

Each task rotates one object about the z axis to a random target orientation with a ShadowHand
(``gymnasium-robotics``' manipulate env with BRC's object models, ``<object>-rotate-v1``: target
rotation ``z``, position ignored, sparse reward, initial position and rotation randomised), 100
steps per episode. The metric is success: an episode succeeds if the object reached the target
orientation at any step, as BRC's evaluation counts it. BRC trains its multi-task agent on the 85
training objects and tests transfer on the 29 held-out ones (``jaxrl/env_names.py`` at commit
eec512f: ``SHADOWHAND_TRAIN``, ``SHADOWHAND_TEST``); they are the catalog groups
``shadowhand-train`` and ``shadowhand-test``. Install with ``harness install shadowhand``.
"""

from __future__ import annotations

EPISODE_LENGTH = 100
"""BRC's registration of the rotate tasks: max_episode_steps = 100."""

TRAIN = (
    "e_toy_airplane", "knife", "flat_screwdriver", "elephant", "apple", "scissors", "i_cups", "cup",
    "foam_brick", "pudding_box", "wristwatch", "padlock", "power_drill", "binoculars", "b_lego_duplo",
    "ps_controller", "mouse", "hammer", "f_lego_duplo", "piggy_bank", "can", "extra_large_clamp",
    "peach", "a_lego_duplo", "racquetball", "tuna_fish_can", "a_cups", "pan", "strawberry",
    "d_toy_airplane", "wood_block", "small_marker", "sugar_box", "ball", "torus", "i_toy_airplane",
    "chain", "j_cups", "c_toy_airplane", "airplane", "nine_hole_peg_test", "water_bottle", "c_cups",
    "medium_clamp", "large_marker", "h_cups", "b_colored_wood_blocks", "j_lego_duplo", "f_toy_airplane",
    "toothbrush", "tennis_ball", "mug", "sponge", "k_lego_duplo", "phillips_screwdriver", "f_cups",
    "c_lego_duplo", "d_marbles", "d_cups", "camera", "d_lego_duplo", "golf_ball", "k_toy_airplane",
    "b_cups", "softball", "wine_glass", "chips_can", "cube", "master_chef_can", "alarm_clock",
    "gelatin_box", "h_lego_duplo", "baseball", "light_bulb", "banana", "rubber_duck", "headphones",
    "i_lego_duplo", "b_toy_airplane", "pitcher_base", "j_toy_airplane", "g_lego_duplo", "cracker_box",
    "orange", "e_cups",
)

TEST = (
    "rubiks_cube", "dice", "bleach_cleanser", "pear", "e_lego_duplo", "pyramid", "stapler",
    "flashlight", "large_clamp", "a_toy_airplane", "tomato_soup_can", "fork", "cell_phone",
    "m_lego_duplo", "toothpaste", "flute", "stanford_bunny", "a_marbles", "potted_meat_can", "timer",
    "lemon", "utah_teapot", "train", "g_cups", "l_lego_duplo", "bowl", "door_knob", "mustard_bottle",
    "plum",
)
