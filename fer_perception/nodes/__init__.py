"""ROS 2 nodes of fer_perception: thin translators between messages and the core."""
