"""Named settings of the trainability experiment: today's defaults and the papers' protocols, scaled to fit.

A preset fills every setting of ``python -m validate trainability`` that the user does not give; an explicit flag
always wins. ``python -m validate presets`` lists them, and ``--preset NAME --dry-run`` prints the resolved settings
without training.

Sources (what each paper says, and what is scaled here):

- Schoenholz et al. (2017), *Deep Information Propagation*, section "Experimental results" and the MNIST / CIFAR10
  trainability figure: fully connected tanh networks, depth ``L`` from 10 to 300 and ``sigma_w2`` from 1 to 4,
  ``sigma_b2 = 0.05``, trained with plain SGD (learning rate 1e-3; RMSProp 1e-5 in a second set), and the heat map
  shows *training* accuracy after a given number of steps, with the curve ``6 xi_c`` overlaid. Not available in the
  text we could consult here: the width and the batch size (the preset uses width 256 and batch 128, the values of
  issue 11's recorded run).
- Xiao et al. (2018), paper 002, section 3 and Figure 2 (``/work/shared/papers/002_*.txt`` lines 109-111): the vanilla
  CNN (three 3 x 3 convolutions with strides 1, 2, 2 to ``c`` channels, then ``d`` 3 x 3 convolutions, average pooling,
  a dense readout), tanh, MNIST, depth from 10 to 600, ``c = 256`` for ``d <= 256`` (128 beyond), no learning-rate
  decay; Figure 2 plots *training* accuracy after different numbers of steps with ``xi_c`` overlaid. Our copy of the
  text lost the ``sigma_w2`` interval, the bias variance, the optimizer settings and the step counts; the preset uses
  the FC ranges (``sigma_w2`` in [1, 4], ``sigma_b2 = 0.05``), 64 channels, depths 10 to 300 and 1000 SGD steps.

Every preset states its scaling in :attr:`Preset.scaled`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Preset", "PRESETS", "DEFAULT_PRESET", "get_preset"]


@dataclass(frozen=True)
class Preset:
    """A named set of trainability settings.

    Attributes
    ----------
    name : str
    description : str
        One line.
    settings : dict
        Values keyed by the ``dest`` of the CLI flag (``sigma_w2``, ``depth``, ``lr``, ``metric``...); ranges are kept
        as the CLI strings (``"1:4:16"``).
    source : str
        The paper and section the protocol comes from.
    scaled : str
        What differs from the paper, and why.
    """

    name: str
    description: str
    settings: dict = field(default_factory=dict)
    source: str = ""
    scaled: str = ""


_COMMON = dict(model="fc", activation="tanh", sigma_b2="0.05", sigma_w2="1:4:16", depth="10:300:16", width=256,
               channels=32, init="gaussian", kernel="uniform", batch_size=128, momentum=0.0, evals=10,
               eval_size=2000, threshold=0.5, lr_depth_ref=None)

PRESETS = {
    "default": Preset(
        "default", "today's defaults: FC tanh, 1000 SGD steps at lr 0.01, final test accuracy",
        {**_COMMON, "steps": 1000, "lr": 1e-2, "metric": "test"},
        source="issue 7 defaults (paper 002's ranges)", scaled="not a paper's protocol"),
    "schoenholz2017-fc": Preset(
        "schoenholz2017-fc", "Schoenholz et al. (2017) MNIST trainability: FC tanh, SGD lr 1e-3, training accuracy",
        {**_COMMON, "steps": 2000, "lr": 1e-3, "metric": "train"},
        source="Schoenholz, Gilmer, Ganguli, Sohl-Dickstein, Deep Information Propagation (ICLR 2017), "
               "section 'Experimental results': L in [10, 300], sigma_w2 in [1, 4], sigma_b2 = 0.05, SGD lr 1e-3, "
               "training accuracy after t steps, boundary 6 xi_c",
        scaled="the 5000-image MNIST sample (4000 train) instead of full MNIST; 16 x 16 grid; width 256 and batch "
               "128 (not stated in the text consulted); 2000 steps (measured on CPU at width 128: lr 1e-3 takes "
               "depth-10 nets to 83 % training accuracy in 1000 steps and critical depth-100 nets to 65 % in 500)"),
    "fc-depth-scaled-lr": Preset(
        "fc-depth-scaled-lr", "the Schoenholz grid with SGD lr 0.01 * min(1, 20 / depth): a stable step at every depth",
        {**_COMMON, "steps": 2000, "lr": 1e-2, "lr_depth_ref": 20, "metric": "train"},
        source="Schoenholz et al. (2017) grid; learning rate rule from the measurements in docs/validation.md",
        scaled="not a paper's protocol: lr * depth is held at 0.2 beyond depth 20 (lr 0.01 diverges or collapses "
               "to chance beyond depth ~100 at width 128-256; lr 1e-3 at depth 10 learns slowly)"),
    "xiao2018-cnn": Preset(
        "xiao2018-cnn", "paper 002 Figure 2: vanilla CNN tanh on MNIST, training accuracy",
        {**_COMMON, "model": "cnn", "channels": 64, "steps": 1000, "lr": 1e-2, "lr_depth_ref": 20, "metric": "train"},
        source="Xiao et al. 2018 (paper 002), section 3 and Figure 2: vanilla CNN, tanh, MNIST, depth 10 to 600, "
               "c = 256 (d <= 256), no learning-rate decay, training accuracy after different numbers of steps, "
               "xi_c overlaid",
        scaled="64 channels instead of 256; depths 10 to 300 instead of 600; the MNIST sample; sigma_w2 range, "
               "sigma_b2, learning rate and steps are not in the text consulted: FC ranges, SGD lr 0.01 scaled by "
               "20 / depth beyond depth 20 (6.7e-4 at depth 300; see validate.trainability.depth_scaled_lr), "
               "1000 steps"),
}

DEFAULT_PRESET = "default"


def get_preset(name: str) -> Preset:
    """The preset called ``name``; ``ValueError`` listing the valid names otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}") from None
