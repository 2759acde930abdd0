import torch

from hasten.core.callback import Callback
from hasten.methods import build_method
from hasten.methods.precision import Precision, bf16_autocast
from tests.harness import TinyConvNet, assert_resumes_exactly, image_trainer_factory
from tests.methods.optimization_loops import cifar_batches, plain_fit, same_weights, seeded_model, sgd

# bf16 convolutions are slow on CPUs without bf16 units: a narrower net and smaller batches keep this quick.
SMALL = dict(model=lambda: TinyConvNet(width=8), batch_size=16)


def _small_net():
    return TinyConvNet(width=8)


class _Dtypes(Callback):
    def __init__(self) -> None:
        self.train, self.eval = set(), set()

    def on_after_forward(self, state) -> None:  # type: ignore[no-untyped-def]
        self.train.add(state.outputs.dtype)

    def on_eval_batch_end(self, state) -> None:  # type: ignore[no-untyped-def]
        self.eval.add(state.eval_outputs.dtype)


def test_forward_and_eval_run_in_bf16_while_weights_stay_fp32(data_dir):
    make = image_trainer_factory(data_dir, max_duration="2ba", **SMALL)
    plain, mixed = _Dtypes(), _Dtypes()
    make(callbacks=[plain]).fit()
    trainer = make(algorithms=[Precision()], callbacks=[mixed])
    assert trainer.state.precision == "bf16" and trainer.state.run_info["config"]["precision"] == "bf16"
    trainer.fit()
    assert plain.train == plain.eval == {torch.float32}
    assert mixed.train == mixed.eval == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in trainer.state.model.parameters())
    assert all(v.dtype == torch.float32 for s in trainer.state.optimizer.state.values() for v in s.values())


def test_algorithm_equals_functional_form(data_dir):
    trainer = image_trainer_factory(data_dir, algorithms=lambda: [build_method("precision")], eval_data=None, **SMALL)()
    trainer.fit()
    model = seeded_model(_small_net)
    plain_fit(model, sgd(model), cifar_batches(data_dir, 16), steps=8, autocast=lambda: bf16_autocast("cpu"))
    assert same_weights(model, trainer.state.model)
    fp32 = seeded_model(_small_net)
    plain_fit(fp32, sgd(fp32), cifar_batches(data_dir, 16), steps=8)
    assert not same_weights(fp32, trainer.state.model)  # bf16 really changed the arithmetic


def test_precision_resumes_exactly(tmp_path, data_dir):
    assert_resumes_exactly(image_trainer_factory(data_dir, algorithms=lambda: [Precision()], **SMALL), tmp_path)
