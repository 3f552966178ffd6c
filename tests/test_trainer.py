"""models.trainer: the loop every model plugs into (budget, history, checkpoints, resume, refusals)."""

import pytest
import torch

from models import trainer


def _job(counter: dict, kind: str = "toy", arch: dict | None = None) -> trainer.Job:
    w = torch.nn.Parameter(torch.tensor(3.0))
    opt = torch.optim.SGD([w], lr=0.1)

    def step(i: int) -> dict:
        counter["steps"] = counter.get("steps", 0) + 1
        loss = w ** 2
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.detach(), "index": float(i)}

    def load(state: dict) -> None:
        with torch.no_grad():
            w.copy_(state["w"])

    return trainer.Job(kind=kind, step=step, state=lambda: {"w": w.detach().clone()}, load=load,
                       config={"lr": 0.1}, arch=arch or {"width": 1})


def test_budget_history_checkpoints_and_resume(tmp_path):
    seen = {}
    schedule = trainer.Schedule(steps=25, minutes=None, checkpoint_every=10, history_every=10, log_interval_s=1e9)
    first = trainer.run(_job(seen), tmp_path, schedule, device=torch.device("cpu"), items_per_step=1)
    assert (first.step, first.steps_this_run, first.resumed) == (25, 25, False)
    assert first.stop_reason == "step budget reached (25)"
    assert first.history["index"] == [4.5, 14.5, 22.0]         # means of steps 0-9, 10-19 and the last 5
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert saved["kind"] == "toy" and saved["step"] == 25 and saved["history"] == first.history
    more = trainer.Schedule(steps=30, minutes=None, checkpoint_every=10, history_every=10, log_interval_s=1e9)
    again = trainer.run(_job(seen), tmp_path, more, device=torch.device("cpu"), items_per_step=1)
    assert (again.step, again.steps_this_run, again.resumed) == (30, 5, True)
    assert seen["steps"] == 30 and len(again.history["index"]) == 4
    assert trainer.summary(again, 2, "images")["steps_this_run"] == 5


def test_another_kind_or_architecture_is_refused_with_what_to_do(tmp_path):
    schedule = trainer.Schedule(steps=2, minutes=None, checkpoint_every=1, log_interval_s=1e9)
    trainer.run(_job({}), tmp_path, schedule, device=torch.device("cpu"), items_per_step=1)
    with pytest.raises(trainer.CheckpointMismatch, match="not a vae checkpoint .* new output directory"):
        trainer.run(_job({}, kind="vae"), tmp_path, schedule, device=torch.device("cpu"), items_per_step=1)
    with pytest.raises(trainer.CheckpointMismatch, match="different architecture"):
        trainer.run(_job({}, arch={"width": 2}), tmp_path, schedule, device=torch.device("cpu"), items_per_step=1)


def test_a_minutes_budget_stops_the_loop(tmp_path):
    schedule = trainer.Schedule(steps=None, minutes=0.001, checkpoint_every=0, log_interval_s=1e9)
    result = trainer.run(_job({}), tmp_path, schedule, device=torch.device("cpu"), items_per_step=1)
    assert result.stop_reason.startswith("time budget reached") and (tmp_path / "checkpoint.pt").exists()
