"""On a CUDA GPU, where the course's students run the notebook: a training step's waits, a fixed history, the
notebook's loop, resume, bfloat16, predict and the app, the robustness figures and export with models on the GPU.
Skipped with the reason where there is no GPU; `make gpu-check` runs them."""

import io
import json

import pytest
import torch
from PIL import Image

from checkpoint import DEFAULT_CHECKPOINT, load_checkpoint
from config import TrainConfig
from predict import load_rejector, predict_image
from threads import FollowFreeCores
from training import apply_precision, build, fit, make_ema, make_optimizer, training_criterion
from util import test as evaluate  # under its own name pytest would collect it
from util import train

pytestmark = pytest.mark.cuda


def small(data_dir, **changes) -> TrainConfig:
    """The default recipe on 2,000 images: 16 steps an epoch, the redrawn pens among them."""
    return TrainConfig(**{"epochs": 2, "subset": 2000, "data_dir": str(data_dir), **changes})


def without_seconds(history: dict) -> dict:
    return {k: v for k, v in history.items() if k != "seconds"}


def test_a_training_step_of_the_default_recipe_waits_for_the_gpu_at_most_once(cuda, data_dir):
    from evidence.gpu_check import syncs_per_step  # torch.cuda.set_sync_debug_mode's warnings over one epoch

    waits = syncs_per_step()
    assert waits["synchronisations"] <= waits["steps"] + 3, waits  # one a step, and the epoch's sums at its end


def test_a_seed_fixes_the_history_on_the_gpu_and_a_resumed_run_equals_it(cuda, data_dir):
    cfg = small(data_dir, epochs=3)
    states = []

    def keep(state: dict) -> None:  # serialised now: the state refers to tensors that go on training
        buffer = io.BytesIO()
        torch.save(state, buffer)
        states.append(buffer.getvalue())

    model, train_loader, test_loader = build(cfg, cuda)
    whole = fit(model, cuda, train_loader, test_loader, cfg, save_state=keep)
    model_again, train_loader, test_loader = build(cfg, cuda)
    again = fit(model_again, cuda, train_loader, test_loader, cfg)
    assert without_seconds(again) == without_seconds(whole)
    resumed_model, train_loader, test_loader = build(cfg, cuda)
    state = torch.load(io.BytesIO(states[0]), weights_only=True)  # stopped after its first epoch
    resumed = fit(resumed_model, cuda, train_loader, test_loader, cfg, resume=state)
    assert without_seconds(resumed) == without_seconds(whole)
    assert all(torch.equal(a, b) for a, b in zip(resumed_model.state_dict().values(), model.state_dict().values()))


def test_the_notebooks_loop_on_the_gpu_gives_fits_history(cuda, data_dir):
    cfg = small(data_dir)
    model, train_loader, test_loader = build(cfg, cuda)
    expected = fit(model, cuda, train_loader, test_loader, cfg)
    model, train_loader, test_loader = build(cfg, cuda)  # the training cell of S6.ipynb, as written there
    optimizer, scheduler = make_optimizer(model, cfg, steps_per_epoch=len(train_loader))
    ema = make_ema(model, cfg.ema_decay)
    tested = ema.module if ema is not None else model
    criterion = training_criterion(cfg)
    autocast = apply_precision(cfg.precision, cuda)
    test_acc = []
    for _ in range(cfg.epochs):
        train(model, cuda, FollowFreeCores(train_loader, cfg.threads), optimizer, criterion, scheduler=scheduler,
              ema=ema, progress=False, autocast=autocast)
        test_acc.append(evaluate(tested, cuda, test_loader).acc)
    assert test_acc == expected["test_acc"]


def test_bfloat16_trains_where_the_gpu_has_it_and_is_refused_where_it_does_not(cuda, data_dir):
    cfg = small(data_dir, epochs=1, precision="bfloat16")
    if not torch.cuda.is_bf16_supported(including_emulation=False):
        with pytest.raises(ValueError, match="needs a GPU with native bfloat16"):
            apply_precision(cfg.precision, cuda)
        return
    model, train_loader, test_loader = build(cfg, cuda)
    assert fit(model, cuda, train_loader, test_loader, cfg)["test_acc"][-1] > 50


def test_predict_and_the_app_answer_with_models_on_the_gpu(cuda, digits):
    import app

    images, labels = digits
    photo = Image.fromarray(255 - images[0]).resize((112, 112), Image.Resampling.BICUBIC)  # dark ink on paper
    on_cpu = predict_image(load_checkpoint(DEFAULT_CHECKPOINT)[0], photo, rejector=load_rejector())
    model, rejector = load_checkpoint(DEFAULT_CHECKPOINT, cuda)[0], load_rejector().to(cuda)
    on_gpu = predict_image(model, photo, rejector=rejector)
    assert on_gpu.digit == on_cpu.digit == labels[0] and on_gpu.is_digit
    assert on_gpu.probability == pytest.approx(on_cpu.probability, abs=1e-3)
    recognise, _, classify = app.make_handlers(model, rejector)
    assert recognise(photo)[2].startswith(f"**{labels[0]}**")


def test_the_robustness_figures_follow_a_model_on_the_gpu(cuda, digits):
    from evidence import mnist_c, nondigits

    images, labels = digits
    on_cpu, on_gpu = load_checkpoint(DEFAULT_CHECKPOINT)[0], load_checkpoint(DEFAULT_CHECKPOINT, cuda)[0]
    assert mnist_c.accuracy(on_gpu, images, labels) == pytest.approx(mnist_c.accuracy(on_cpu, images, labels), abs=5)
    x = torch.from_numpy(images).float().div(255).unsqueeze(1)
    torch.testing.assert_close(nondigits.top_probability(on_gpu, x), nondigits.top_probability(on_cpu, x),
                               atol=1e-3, rtol=0)


def test_a_checkpoint_trained_on_the_gpu_exports_to_onnx_that_agrees(cuda, data_dir, tmp_path):
    import export
    import train

    train.main(["--epochs", "1", "--subset", "1500", "--data-dir", str(data_dir), "--out", str(tmp_path / "run")])
    assert json.loads((tmp_path / "run" / "history.json").read_text())["device"] == "cuda"
    onnx = export.export(tmp_path / "run" / "checkpoint.pt", tmp_path / "run.onnx")
    result = export.check(onnx, tmp_path / "run" / "checkpoint.pt", data_dir)
    assert result["same_predictions"] == result["images"] == 10_000
