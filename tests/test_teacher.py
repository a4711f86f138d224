"""training.Teacher: a small model learns a trained one's answers, the teacher stays as it was, foreign ones refused."""

import pytest
import torch
import torch.nn.functional as F

from checkpoint import DEFAULT_CHECKPOINT, load_checkpoint
from config import ConfigError, TrainConfig
from model import probabilities
from training import build, make_ema, make_optimizer, make_teacher, training_criterion
from util import train

STUDENT = dict(model="4k", epochs=2, subset=2000, batch_size=64, teacher_temperature=4.0)  # 64 steps, real digits


def student(data_dir, **teaching):
    """A 4k student trained by the notebook's loop -> (its KL from the teacher's answers on its training digits at
    the teacher's temperature, the teacher it had or None)."""
    cfg = TrainConfig(**STUDENT, data_dir=str(data_dir), **teaching)
    model, train_loader, _ = build(cfg, torch.device("cpu"))
    optimizer, scheduler = make_optimizer(model, cfg, len(train_loader))
    ema, teacher = make_ema(model, cfg.ema_decay), make_teacher(cfg, model)
    for _ in range(cfg.epochs):
        train(model, "cpu", train_loader, optimizer, training_criterion(cfg), scheduler=scheduler, ema=ema,
              teacher=teacher, progress=False)
    images, _ = train_loader.dataset.inputs()
    shipped = load_checkpoint(DEFAULT_CHECKPOINT)[0]
    t = cfg.teacher_temperature
    theirs, ours = (F.log_softmax(probabilities(m, images).log() / t, dim=1) for m in (shipped, ema.module))
    return float(F.kl_div(ours, theirs, log_target=True, reduction="batchmean")), teacher


def test_a_student_learns_the_teachers_answers_and_the_teacher_stays_as_it_was(data_dir):
    taught, teacher = student(data_dir, teacher=str(DEFAULT_CHECKPOINT), teacher_weight=1.0)  # the teacher alone
    untaught, _ = student(data_dir)
    assert taught < 0.8 * untaught, (taught, untaught)
    shipped = load_checkpoint(DEFAULT_CHECKPOINT)[0].state_dict()
    assert not teacher.model.training and all(torch.equal(v, shipped[k]) for k, v in teacher.model.state_dict().items())


def test_a_teacher_that_is_not_a_checkpoint_of_this_project_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="teacher must be an existing checkpoint file"):
        TrainConfig(teacher=str(tmp_path / "missing.pt"))
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="cannot teach: .* is not a checkpoint written by this project's train.py"):
        make_teacher(TrainConfig(teacher=str(tmp_path / "notes.pt")), torch.nn.Linear(1, 1))
