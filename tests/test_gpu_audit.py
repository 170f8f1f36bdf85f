"""Every op of Net 1's training step and of the export has a GPU kernel: nothing falls back to the CPU."""

import pytest
import tensorflow as tf

from tinyresnet import export, gpu_audit, train
from tinyresnet import spec as spec_lib
from tinyresnet.augment import PaperAugment
from tinyresnet.config import Config

IMAGE_SHAPE = (64, 64, 3)


def _build(precision):
    # Width 0.125: the ops of full-width Net 1, traced in a fraction of the time.
    config = Config(net="net1", width=0.125, augment_on="model", precision=precision)
    return train.build_trainer(config, spec_lib.parse_spec(config.net), IMAGE_SHAPE, 200, steps=10)


def _train_step(trainer):
    """The step `fit` runs on each batch: Keras' train function calls `train_step` in a `tf.function`."""
    batch = (tf.TensorSpec([None, *IMAGE_SHAPE], tf.uint8), tf.TensorSpec([None], tf.int64))
    return tf.function(trainer.train_step).get_concrete_function(batch)


def _op_types(function):
    graph_def = function.graph.as_graph_def()
    return {n.op for n in graph_def.node} | {n.op for f in graph_def.library.function for n in f.node_def}


@pytest.mark.slow  # traces Net 1's step (5-8 s a precision); the audit itself is checked by the fast tests below
@pytest.mark.parametrize("precision", ["float32", "mixed_float16", "mixed_bfloat16"])
def test_every_op_of_net1_s_training_step_has_a_gpu_and_an_xla_kernel(precision):
    _, trainer = _build(precision)
    assert any(isinstance(layer, PaperAugment) for layer in trainer.layers)
    step = _train_step(trainer)
    assert {"GatherV2", "Conv2DBackpropFilter", "FusedBatchNormGradV3"} <= _op_types(step)  # augment, backward
    found = gpu_audit.ops_without_gpu_kernel(step)
    assert not found, gpu_audit.report(found)
    # jit_compile is on with a GPU: XLA must compile every op of the step.
    found = gpu_audit.ops_without_kernel(step, "XLA_GPU_JIT")
    assert not found, gpu_audit.report(found, "XLA_GPU_JIT")


@pytest.mark.slow  # traces and exports Net 1 (7 s); the audit itself is checked by the fast tests below
def test_every_op_of_the_exported_signatures_has_a_gpu_kernel_or_a_reason(tmp_path):
    model, _ = _build("float32")
    loaded = tf.saved_model.load(export.export_model(model, str(tmp_path / "1"), [f"c{i}" for i in range(200)]))
    assert set(loaded.signatures) == {"serving_default", "serving_uint8", "serve_image_bytes"}
    for name, signature in loaded.signatures.items():
        allow = gpu_audit.SERVE_IMAGE_BYTES if name == "serve_image_bytes" else gpu_audit.ALLOW
        found = gpu_audit.ops_without_gpu_kernel(signature, allow)
        assert not found, f"{name}: {gpu_audit.report(found)}"
    # Every entry of the allow-lists is needed: none outlives the op it excuses.
    needed = {f"{f.op}:{t}" for f in gpu_audit.ops_without_gpu_kernel(loaded.signatures["serve_image_bytes"], {})
              for t in f.dtypes}
    needed |= {key.split(":")[0] for key in needed}
    assert set(gpu_audit.SERVE_IMAGE_BYTES) <= needed


def test_the_audit_names_an_op_without_a_gpu_kernel_even_in_a_nested_function():
    @tf.function
    def shrink(images):
        # Antialiased resize is ScaleAndTranslate, which has a CPU kernel only; here inside a cond's branch.
        return tf.cond(tf.reduce_sum(images) > 0, lambda: tf.image.resize(images, (8, 8), antialias=True),
                       lambda: images[:, :8, :8])

    found = gpu_audit.ops_without_gpu_kernel(shrink.get_concrete_function(tf.TensorSpec([None, 16, 16, 3])))
    assert [(f.op, f.dtypes) for f in found] == [("ScaleAndTranslate", ("float32",))]
    assert found[0].function.startswith("cond_true")
    assert gpu_audit.report(found).startswith("no GPU kernel for ScaleAndTranslate (float32; node ")
    assert gpu_audit.ops_without_gpu_kernel(shrink.get_concrete_function(tf.TensorSpec([None, 16, 16, 3])),
                                            {"ScaleAndTranslate": "a test's reason"}) == []


def test_the_xla_audit_names_crop_and_resize_which_is_why_the_model_s_augmentation_gathers():
    def augmentation(resample):
        layer = PaperAugment(seed=0, resample=resample)
        return tf.function(lambda images: layer(images, training=True)).get_concrete_function(
            tf.TensorSpec([None, 16, 16, 3], tf.uint8))

    found = gpu_audit.ops_without_kernel(augmentation("crop_and_resize"), "XLA_GPU_JIT")
    assert [f.op for f in found] == ["CropAndResize"]
    assert "XLA cannot compile it (jit_compile fails)" in gpu_audit.report(found, "XLA_GPU_JIT")
    assert gpu_audit.ops_without_gpu_kernel(augmentation("crop_and_resize")) == []  # a GPU kernel, not an XLA one
    assert gpu_audit.ops_without_kernel(augmentation("gather"), "XLA_GPU_JIT") == []


def test_the_audit_checks_the_dtype_not_only_the_op():
    # GatherV2 has GPU kernels, but none for uint8: a gather of uint8 images would run on the CPU.
    gather = tf.function(lambda images: tf.gather(images, [1, 0]))
    assert gpu_audit.ops_without_gpu_kernel(gather.get_concrete_function(tf.TensorSpec([2, 4], tf.float32))) == []
    found = gpu_audit.ops_without_gpu_kernel(gather.get_concrete_function(tf.TensorSpec([2, 4], tf.uint8)))
    assert [(f.op, f.dtypes) for f in found] == [("GatherV2", ("int32", "uint8"))]


def test_the_gpu_page_lists_every_op_of_the_allow_lists():
    import os
    import re
    with open(os.path.join(os.path.dirname(os.path.dirname(__file__)), "experiments", "GPU.md")) as f:
        page = f.read()
    listed = set(re.findall(r"`(\w+)`", page))
    assert {key.split(":")[0] for key in gpu_audit.SERVE_IMAGE_BYTES} <= listed
