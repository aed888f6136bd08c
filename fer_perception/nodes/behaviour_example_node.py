"""behaviour_example: a tiny node that reacts to expression events, as a robot's behaviour layer would.

It subscribes once to the events topic and prints readable lines
("f0 smiled for 2.1 s (peak AU12 3.4, felt)", "f1 eyes closed 1.6 s",
"f0 left"). Copy it as the starting point of your own behaviour node: the
event kinds and phases are constants of ``fer_msgs/msg/Event``.
"""
from __future__ import annotations

from fer_msgs.msg import Events
from rclpy.node import Node

from fer_perception.nodes.messages import expression_event
from fer_perception.nodes.qos import QOS_OVERRIDES, reliable
from fer_perception.nodes.runtime import node_main
from fer_perception.report import event_sentence


class BehaviourExampleNode(Node):
    """Prints one line per event."""

    def __init__(self, node_name: str = "behaviour_example", **kwargs):
        super().__init__(node_name, **kwargs)
        self.lines: list[str] = []
        self.create_subscription(Events, "events", self.on_events, reliable(100), qos_overriding_options=QOS_OVERRIDES)

    def on_events(self, msg: Events) -> None:
        for event in msg.events:
            line = event_sentence(expression_event(event))
            self.lines.append(line)
            print(f"[event] {line}", flush=True)


main = node_main(BehaviourExampleNode)

if __name__ == "__main__":
    main()
