"""The project as one package, importable from any notebook: `import s6`, then `s6.datasets.load_data(...)`,
`s6.util.train(...)` or `from s6 import load_data, Net, train, test`.

Make it findable with `pip install -e /path/to/repo` (once per environment) or `sys.path.append('/path/to/repo')`.
The modules themselves live at the repository root, where `from datasets import load_data` keeps working.
Loaded through this package they are bound to each other, never to another top-level module of the same name
(Hugging Face's `datasets` is preinstalled on many notebook images and would shadow ours).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# in import order: each imports only those before it
MODULES = ("pens", "augment", "model", "config", "checkpoint", "loader", "datasets", "util", "threads", "training",
           "plots", "predict")


def _load_modules() -> None:
    # Each module imports its siblings by their plain names at its top (`from datasets import ...`), as the course's
    # files do, and Python looks those names up in sys.modules. While they load, those names point at this
    # package's copies; afterwards sys.modules is restored, so a foreign `datasets` stays what it was. This is the
    # one place that does it (docs/training.md: why).
    saved = {name: sys.modules.get(name) for name in MODULES}
    try:
        for name in MODULES:
            spec = importlib.util.spec_from_file_location(f"{__name__}.{name}", ROOT / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = sys.modules[name] = module
            spec.loader.exec_module(module)
            globals()[name] = module
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


_load_modules()

load_data = datasets.load_data  # noqa: F821  (bound by _load_modules)
Net, model_summary = model.Net, model.model_summary  # noqa: F821
TrainConfig = config.TrainConfig  # noqa: F821
train, test, get_device, plot_acc_loss = util.train, util.test, util.get_device, util.plot_acc_loss  # noqa: F821
fit = training.fit  # noqa: F821
load_checkpoint, predict_image = checkpoint.load_checkpoint, predict.predict_image  # noqa: F821
load_rejector = predict.load_rejector  # noqa: F821  (predict_image(model, img, rejector=load_rejector()))
