"""Losses saved inside models; registered here because `tinyresnet.models` imports this module,
so any process that loads a tinyresnet model can deserialize them."""

import keras


@keras.saving.register_keras_serializable(package="tinyresnet")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Sparse softmax cross-entropy on logits with label smoothing."""

    def __init__(self, label_smoothing=0.0, name="smoothed_sparse_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        one_hot = keras.ops.one_hot(keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32"),
                                    keras.ops.shape(y_pred)[-1])
        return keras.losses.categorical_crossentropy(one_hot, y_pred, from_logits=True,
                                                     label_smoothing=self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def classification_loss(label_smoothing=0.0):
    """Cross-entropy on logits; with `label_smoothing` > 0 the smoothed variant."""
    if label_smoothing:
        return SmoothedSparseCrossentropy(label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
