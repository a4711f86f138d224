"""util.py: the one-epoch train/test, the fit loop, its history, evaluation helpers, the course's plot."""


import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from config import TrainConfig
from datasets import load_data
from model import Net, probabilities
from plots import confusion_matrix
from training import fit, make_optimizer
from util import EpochResult, get_correct_pred_count, plot_acc_loss, set_seed, train
from util import test as evaluate  # imported as `test`, pytest would collect it

SMALL = TrainConfig(epochs=3, batch_size=64, subset=4000)  # 189 steps on 4,000 real images


def small_run(data_dir, cfg=SMALL):
    set_seed(cfg.seed)
    train_loader, test_loader = load_data(cfg.batch_size, data_dir, seed=cfg.seed, subset=cfg.subset)
    model = Net()
    return model, train_loader, test_loader, fit(model, torch.device("cpu"), train_loader, test_loader, cfg)


def test_get_correct_pred_count():
    prediction = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert get_correct_pred_count(prediction, torch.tensor([1, 0, 0])) == 2


def test_a_few_hundred_steps_learn_real_digits(data_dir):
    model, _, test_loader, history = small_run(data_dir)
    assert history["epoch"] == [1, 2, 3]
    assert history["test_acc"][-1] >= 90.0  # chance is 10%
    assert history["train_loss"][-1] < history["train_loss"][0]
    # test() is deterministic and agrees with probabilities() on the same model
    loss, acc = evaluate(model, torch.device("cpu"), test_loader, F.nll_loss)
    assert (loss, acc) == (history["test_loss"][-1], history["test_acc"][-1])
    images, labels = test_loader.dataset.inputs()
    probs = probabilities(model, images)
    assert 100 * int((probs.argmax(1) == labels).sum()) / len(labels) == acc
    torch.testing.assert_close(F.nll_loss(probs.log(), labels), torch.tensor(loss), rtol=1e-4, atol=1e-5)


def test_too_short_schedule_is_refused():
    with pytest.raises(ValueError, match="at least 10 steps"):
        make_optimizer(Net(), TrainConfig(epochs=1), steps_per_epoch=5)


def test_train_returns_mean_loss_and_accuracy_and_updates_weights(data_dir):
    set_seed(0)
    train_loader, _ = load_data(100, data_dir, subset=500)
    model = Net()
    before = [p.clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    result = train(model, torch.device("cpu"), train_loader, optimizer, F.nll_loss)
    loss, acc = result
    assert isinstance(result, EpochResult) and (result.loss, result.acc) == (loss, acc)
    assert isinstance(loss, float) and isinstance(acc, float)
    assert 0 < loss < 5 and 0 <= acc <= 100
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_each_fit_owns_its_history(data_dir):
    # The original project's "periodic spikes": module-level lists that grew on every re-run.
    cfg = TrainConfig(epochs=1, batch_size=50, subset=1000)
    _, _, _, first = small_run(data_dir, cfg)
    _, _, _, second = small_run(data_dir, cfg)
    assert first is not second
    assert len(first["test_acc"]) == len(second["test_acc"]) == 1
    first.pop("seconds"), second.pop("seconds")
    assert first == second  # same seed, same run


def test_plot_acc_loss_is_a_2x2_figure_that_saves(tmp_path):
    losses, accs = [1.0, 0.5, 0.4, 0.3, 0.2], [80, 90, 92, 93, 94]
    fig = plot_acc_loss(losses, accs, losses, accs)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 4
    assert all(t == int(t) for t in fig.axes[0].get_xticks())  # whole epochs on the x axis
    assert [ax.get_title() for ax in fig.axes][:2] == ["Training Loss", "Test Loss"]
    fig.savefig(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_confusion_matrix_counts_every_test_image(data_dir, model):
    _, test_loader = load_data(100, data_dir, subset=1000)
    images, labels = test_loader.dataset.inputs()
    probs = probabilities(model, images)
    matrix = confusion_matrix(probs.argmax(1), labels)
    assert matrix.shape == (10, 10)
    assert int(matrix.sum()) == len(test_loader.dataset) == 1000
    assert matrix.sum(1).tolist() == torch.bincount(labels, minlength=10).tolist()
    assert int(matrix.diag().sum()) == int((probs.argmax(1) == labels).sum())


def test_threads_follow_the_cores_other_programs_leave_free(monkeypatch):
    import time

    from evidence.bench import competing_load
    from threads import CoreWatch, FollowFreeCores, describe_threads, thread_policy

    if CoreWatch().cores < 2 or CoreWatch().last is None:
        pytest.skip("needs Linux and at least 2 cores")
    with competing_load(CoreWatch().cores - 1):
        time.sleep(0.5)
        watch = CoreWatch()
        time.sleep(1.2)
        free = watch.free()
        assert free is not None and 1 <= free <= watch.cores - 1  # the busy processes' cores are not counted
        assert watch.free() is None  # the next look only after LOOK_EVERY
        before = torch.get_num_threads()
        torch.set_num_threads(watch.cores)
        paced = FollowFreeCores(range(3), None)  # any loader: the policy applies between its batches
        assert len(paced) == 3 and [time.sleep(0.3) or batch for batch in paced] == [0, 1, 2]  # first look: 0.25 s
        assert torch.get_num_threads() < watch.cores  # set to what the busy processes left free
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        assert isinstance(thread_policy(None), CoreWatch) and "following the cores" in describe_threads(None)
        assert thread_policy(1) is None and torch.get_num_threads() == 1 and "1 (--threads)" in describe_threads(1)
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert thread_policy(None) is None  # the user's OMP_NUM_THREADS is respected
    finally:
        torch.set_num_threads(before)
