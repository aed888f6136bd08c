"""Offline analysis of recorded sessions: videos, images and rosbag2 bags through the same core as the live graph."""
