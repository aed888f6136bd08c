"""ros2 launch fer_perception fer.launch.py [source:=...] [image:=...] [camera:=false] [monitor:=true]

Builds the launch description from config/graph.yaml, the same description
that fer-run starts in one process, and applies the package's Fast DDS
profile unless FASTDDS_DEFAULT_PROFILES_FILE is already set.
"""
import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from fer_perception.dds import PROFILE_ENV, profile_path
from fer_perception.graph import load_graph


def generate_launch_description() -> LaunchDescription:
    graph = load_graph()

    def nodes(context):
        values = {name: LaunchConfiguration(name).perform(context) for name in graph.arguments}
        return [Node(**spec.launch_kwargs()) for spec in graph.resolve(values)]

    actions = [DeclareLaunchArgument(a.name, default_value=a.default, description=a.description)
               for a in graph.arguments.values()]
    if PROFILE_ENV not in os.environ:
        actions.append(SetEnvironmentVariable(PROFILE_ENV, profile_path()))
    actions.append(OpaqueFunction(function=nodes))
    return LaunchDescription(actions)
