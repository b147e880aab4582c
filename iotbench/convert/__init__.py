"""Converters: a trained model rewritten for another runtime, checked against the original before it is saved.

- :mod:`~iotbench.convert.bigdl_cnn`: the Keras CNN as a BigDL Keras-API twin (``iotbench convert cnn``);
- :mod:`~iotbench.convert.bigdl_resnet`: a Keras ResNet20 as a BigDL graph for the JVM (``iotbench convert resnet20``);
- :mod:`~iotbench.convert.bigdl08`: the original's BigDL 0.8 model into BigDL 2.4 (``iotbench convert import-bigdl08``,
  also ``iotbench scala import-bigdl08``).

Each one predicts the test set with both models and refuses to save when the accuracies differ by more than
:data:`TOLERANCE`, and prints a progress line per long pass (they take minutes on two cores).
"""

#: Largest accepted accuracy difference between a converted model and its source (0.5 point).
TOLERANCE = 0.005
