"""fer_perception: facial expression perception for social robots (ROS 2).

The subpackages split the work: the ROS-free core (``types``, ``face``,
``video_source``, ``image_codec``, ...) does the perception; ``nodes`` only
translate between ROS messages and the core.
"""
