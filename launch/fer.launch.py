"""ros2 launch fer_perception fer.launch.py [source:=...] [image:=...] [camera:=false] [monitor:=true] [lifecycle:=manual]

Builds the launch description from config/graph.yaml, the same description
that fer-run starts in one process, and applies the package's Fast DDS
profile unless FASTDDS_DEFAULT_PROFILES_FILE is already set. The lifecycle
nodes are started as launch_ros LifecycleNodes; with lifecycle:=auto (the
default) launch's lifecycle events configure them all at once and activate
each once it is configured and the nodes it is activated after are active,
so the camera starts last. With lifecycle:=manual they stay unconfigured for
your lifecycle manager.
"""
import os

from launch import EventHandler, LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler, SetEnvironmentVariable
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.events.lifecycle import ChangeState, StateTransition
from lifecycle_msgs.msg import Transition

from fer_perception.dds import PROFILE_ENV, profile_path
from fer_perception.graph import NodeSpec, load_graph


def lifecycle_events(specs: list[NodeSpec], actions: dict[str, LifecycleNode]) -> list:
    """Configure the nodes of ``specs`` now; activate each once it is inactive (configured) and the nodes of its
    ``activate_after`` are active."""
    if not specs:
        return []
    names = {id(action): name for name, action in actions.items()}
    states: dict[str, str] = {}
    activated: set[str] = set()

    def change(name: str, transition: int) -> EmitEvent:
        return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(actions[name]),
                                           transition_id=transition))

    def on_transition(context) -> list[EmitEvent]:
        event = context.locals.event
        states[names[id(event.action)]] = event.goal_state
        ready = [spec.name for spec in specs if spec.name not in activated and states.get(spec.name) == "inactive"
                 and all(states.get(after) == "active" for after in spec.activate_after)]
        activated.update(ready)
        return [change(name, Transition.TRANSITION_ACTIVATE) for name in ready]

    handler = EventHandler(matcher=lambda event: isinstance(event, StateTransition) and id(event.action) in names,
                           entities=[OpaqueFunction(function=on_transition)])
    return [RegisterEventHandler(handler), *[change(spec.name, Transition.TRANSITION_CONFIGURE) for spec in specs]]


def generate_launch_description() -> LaunchDescription:
    graph = load_graph()

    def nodes(context) -> list:
        values = {name: LaunchConfiguration(name).perform(context) for name in graph.arguments}
        specs = graph.resolve(values)
        actions = {spec.name: (LifecycleNode if spec.managed else Node)(**spec.launch_kwargs()) for spec in specs}
        managed = {spec.name: actions[spec.name] for spec in specs if spec.activate}
        return [*actions.values(), *lifecycle_events([s for s in specs if s.activate], managed)]

    actions = [DeclareLaunchArgument(a.name, default_value=a.default, description=a.description,
                                     choices=list(a.choices) or None)
               for a in graph.arguments.values()]
    if PROFILE_ENV not in os.environ:
        actions.append(SetEnvironmentVariable(PROFILE_ENV, profile_path()))
    actions.append(OpaqueFunction(function=nodes))
    return LaunchDescription(actions)
