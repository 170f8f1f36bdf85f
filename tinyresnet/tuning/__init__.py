"""KerasTuner search jobs over the paper's notation: the space (no TensorFlow), the tuner, the results."""
