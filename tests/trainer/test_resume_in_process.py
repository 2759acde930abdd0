from tests.harness import assert_resumes_exactly, image_trainer_factory


def test_baseline_resumes_exactly_on_real_images(tmp_path, data_dir):
    assert_resumes_exactly(image_trainer_factory(data_dir), tmp_path)


def test_grad_accum_resumes_exactly(tmp_path, data_dir):
    assert_resumes_exactly(image_trainer_factory(data_dir, grad_accum=2), tmp_path)
