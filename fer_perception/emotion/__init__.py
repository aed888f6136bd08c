"""Learned facial-expression (emotion) classifier: FER2013 data, network, training, evaluation and inference.

Plain Python and torch, independent of ROS, so it can be trained, evaluated
and tested without a ROS graph; the expression stage uses
:class:`fer_perception.emotion.classifier.EmotionClassifier`.
"""
